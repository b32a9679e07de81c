"""A Ctrl-C between a local DEST's checkpoint being set aside (local_held) and its
replacement's rename into place (attacknew35 found it, left it): only an OSError put the
old copy back, so the interrupted push left no file at the checkpoint's name (the old one
listed only as a held copy; a folder pull of DEST then left that checkpoint out)."""
from __future__ import annotations

import os

import pytest

from _checkpoints import save
from drivestage.local_held import PREFIX as HELD_PREFIX
from drivestage.localdir import UPLOAD_PREFIX

T0 = 1764600000.0


def test_a_ctrl_c_before_the_new_checkpoint_is_in_place_puts_the_old_one_back(
        local_state, tmp_path, monkeypatch):
    from drivestage.upload_tree import push

    folder = tmp_path / "nas" / "run"
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    push(str(src), str(folder))
    first = (folder / "last.pt").read_bytes()
    save(str(src), "last", 2, T0 + 60)
    real = os.replace

    def interrupted(a, b, *args, **kwargs):
        # The new copy's rename into place: the Ctrl-C arrives just before it.
        if os.path.basename(str(a)).startswith(UPLOAD_PREFIX) and str(b).endswith("last.pt"):
            raise KeyboardInterrupt
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        push(str(src), str(folder))
    monkeypatch.setattr(os, "replace", real)
    assert (folder / "last.pt").read_bytes() == first
    assert not [n for n in os.listdir(folder) if n.startswith(HELD_PREFIX)
                or n.startswith(UPLOAD_PREFIX)]
    # The next push completes the replacement.
    push(str(src), str(folder))
    assert (folder / "last.pt").read_bytes() == (src / "last.pt").read_bytes()
