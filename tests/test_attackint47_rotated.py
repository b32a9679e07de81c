"""attackint47: a walked file renamed within its folder between the open and pushlefts47's
check of where the descriptor is open (a log rotated: ``train.log`` -> ``train.log.1``, as
logging's RotatingFileHandler does) was taken for a folder swapped for a link: the push
stopped, exit 1, "…/run became a link while the push ran (a folder when it began)". The
descriptor is open in the folder the walk found: read, as before pushlefts47. The rename is
made by a hook on the check's ``os.readlink`` (the only point between the two)."""
from __future__ import annotations

import os

from drivestage import localfs, sources


def test_a_file_rotated_between_its_open_and_the_check_is_read(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    log = folder / "train.log"
    log.write_bytes(b"step 1\n" * 100)
    real = os.path.join(os.path.realpath(folder), "train.log")
    readlink = os.readlink

    def rotated_first(path, *args, **kwargs):
        if str(path).startswith("/proc/self/fd/") and log.exists():
            os.rename(log, folder / "train.log.1")
        return readlink(path, *args, **kwargs)
    monkeypatch.setattr(os, "readlink", rotated_first)
    fd = sources.open_walked(str(log), real)   # (556f8e4f: BecameOtherError, "a link")
    try:
        import hashlib

        rotated = (folder / "train.log.1").read_bytes()
        assert localfs.file_md5(fd) == hashlib.md5(rotated).hexdigest()
    finally:
        os.close(fd)


def test_a_folder_swapped_for_a_link_between_the_open_and_the_check_is_refused(tmp_path,
                                                                               monkeypatch):
    """(The check's own case, kept: the descriptor open outside the walked folder.)"""
    import pytest

    from drivestage.errors import BecameOtherError

    (tmp_path / "run").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "run" / "train.log").write_bytes(b"ours\n")
    (tmp_path / "out" / "train.log").write_bytes(b"secret\n")
    real = os.path.join(os.path.realpath(tmp_path / "run"), "train.log")
    opener = os.open

    def swapped_first(path, *args, **kwargs):
        if str(path) == real:
            os.rename(tmp_path / "run", tmp_path / "run.before")
            os.symlink(tmp_path / "out", tmp_path / "run")
        return opener(path, *args, **kwargs)
    monkeypatch.setattr(os, "open", swapped_first)
    with pytest.raises(BecameOtherError, match="run became a link while the push ran"):
        sources.open_walked(str(tmp_path / "run" / "train.log"), real)
