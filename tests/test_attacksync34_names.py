"""What a push's messages name when it sends a sidecar from a private copy, in a temporary
folder or in memory (attacksync34)."""
from __future__ import annotations

import os
import tempfile

import pytest

from _checkpoints import save
from _cli import run
from _tmpfs import small_disk  # noqa: F401  (fixture)
from test_attack18_train import _fill

T0 = 1764600000.0


@pytest.fixture(params=["in the temporary folder", "in memory"])
def copies(request, small_disk, monkeypatch, tmp_path):
    """Where the push's private copies go: the temporary folder, or memory (the temporary
    folder on a full disk, as on Colab after a failed save)."""
    tmp = tmp_path / "tmp"
    if request.param == "in memory":
        if not hasattr(os, "memfd_create"):
            pytest.skip("memfd: Linux")
        disk = small_disk(1 << 20)
        tmp = disk / "tmp"
        tmp.mkdir()
        _fill(disk)
    else:
        tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def folder_at_the_sidecar(tmp_path):
    """RUN's ``last`` checkpoint pushed to the local DEST ``nas/run``, a newer ``last``
    saved in RUN since, and DEST's ``last.json`` replaced by an empty folder: (RUN, DEST)."""
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    dest = tmp_path / "nas" / "run"
    code, _, err = run("push", str(src), str(dest))
    assert code == 0, err
    save(str(src), "last", 2, T0 + 60)
    os.remove(dest / "last.json")
    (dest / "last.json").mkdir()
    return src, dest


def test_a_sidecar_refused_by_a_local_dest_is_named_by_its_own_path(local_state, tmp_path,
                                                                    copies):
    """``push run /mnt/nas/run``: the NAS holds a folder at ``last.json``. The push's refusal
    named the private copy the sidecar is sent from (``/tmp/.drivestage-sidecar-….json``, or
    ``/proc/self/fd/9`` for a copy in memory), a file the user never made and that is gone
    once the push ends. It names the sidecar now."""
    src, dest = folder_at_the_sidecar(tmp_path)

    code, _, err = run("push", str(src), str(dest))

    assert code == 1, err   # (pushshared48: only that name, and its checkpoint, wait)
    # (attackpush45's check before a byte is sent says it now, with what to do)
    assert any(line.endswith(f"{dest / 'last.json'} exists and is a folder, not a file; "
                             f"{src / 'last.json'} cannot be sent there: rename one of them, "
                             f"or push with --delete to replace the folder")
               for line in err.splitlines()), err
    assert "drivestage-sidecar" not in err and "/proc/self/fd" not in err, err
    assert os.listdir(dest / "last.json") == []
    assert os.listdir(copies) == []
