"""Where the locks go when the state folder cannot lock files (lock28's fallback), under a
hostile environment (attackds29): ``XDG_RUNTIME_DIR`` (or ``TMPDIR``) set to a relative
path. The locks went to a folder under the current directory: two pushes started from two
folders locked two sets of files, and did not wait for each other (the XDG spec: a
relative path is to be ignored)."""
from __future__ import annotations

import errno
import os

from drivestage import lockdir

from test_lock28_noflock import _no_flock_on, mount  # noqa: F401 - the fixture


def test_a_relative_runtime_folder_is_passed_over(mount, tmp_path, monkeypatch):  # noqa: F811
    _no_flock_on(monkeypatch, mount, errno.ENOLCK)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "run")
    monkeypatch.setenv("TMPDIR", "tmp")
    chosen = []
    for cwd in ("a", "b"):
        (tmp_path / cwd / "run").mkdir(parents=True, mode=0o700)
        (tmp_path / cwd / "tmp").mkdir(mode=0o700)
        monkeypatch.chdir(tmp_path / cwd)
        lockdir._CHOSEN.clear()   # (a new process)
        chosen.append(lockdir.folder_for(mount / "state"))

    assert chosen[0] == chosen[1]
    assert chosen[0].is_absolute() and not str(chosen[0]).startswith(str(tmp_path))
