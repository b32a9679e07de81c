"""A push into a local DEST SIGKILLed (a preempted node, the OOM killer) between setting a
changed checkpoint's old copy aside (``.drivestage-held.<random>.last.pt``, local_held) and
the new copy's rename into place (attack36). Only a Ctrl-C puts the old copy back
(heldint35); a SIGKILL leaves no file at ``last.pt``: DEST holds ``last.json`` and the old
copy under its held name alone. drivestage's readers take the copy the sidecar vouches for
(pair36: a folder pull and a pull of ``last.pt`` by its path, which on main took
``last.json`` alone, exit 0, and said ``no such file``); every other reader of the folder
(``torch.load('/nas/run/last.pt')``, ``cp``, an eval script) finds no ``last.pt``, and a push
of the verified bytes (the run resumed elsewhere from DEST, pushed back before its next save)
took the copy aside for the file already there: no ``last.pt`` for good, until the bytes
change."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from _checkpoints import save
from drivestage.local_held import PREFIX as HELD_PREFIX

T0 = 1764600000.0

# The push, SIGKILLed as it is about to rename the new copy of last.pt into place.
_KILLED = textwrap.dedent("""
    import os, signal, sys
    from drivestage.localdir import UPLOAD_PREFIX
    real = os.replace
    def killed(a, b, *args, **kwargs):
        if os.path.basename(str(a)).startswith(UPLOAD_PREFIX) and str(b).endswith("last.pt"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(a, b, *args, **kwargs)
    os.replace = killed
    from drivestage.upload_tree import push
    push(sys.argv[1], sys.argv[2])
""")


def _killed_state(tmp_path):
    from drivestage.upload_tree import push

    folder = tmp_path / "nas" / "run"
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    push(str(src), str(folder))
    first = (folder / "last.pt").read_bytes()
    save(str(src), "last", 2, T0 + 60)
    proc = subprocess.run([sys.executable, "-c", _KILLED, str(src), str(folder)],
                          env=dict(os.environ), capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert [n for n in os.listdir(folder) if n.startswith(HELD_PREFIX)]
    return folder, first


def test_the_next_push_after_the_kill_leaves_the_new_pair_alone(local_state, tmp_path):
    """What held up: the next push completes the replacement and removes the copy aside."""
    from drivestage.upload_tree import push

    folder, _ = _killed_state(tmp_path)
    push(str(tmp_path / "run"), str(folder))
    assert sorted(os.listdir(folder)) == ["last.json", "last.pt"]
    assert (folder / "last.pt").read_bytes() == (tmp_path / "run" / "last.pt").read_bytes()


def test_a_push_of_the_verified_bytes_after_the_kill_puts_the_checkpoint_at_its_name(
        local_state, tmp_path):
    """The run resumed elsewhere from DEST's verified pair (the old bytes) and pushed back
    before its next save: the copy aside, equal to what is pushed, was taken for the file
    already there, and DEST stayed without a file at ``last.pt`` until the bytes changed."""
    from drivestage.upload_tree import push

    folder, first = _killed_state(tmp_path)
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (resumed / "last.pt").write_bytes(first)
    (resumed / "last.json").write_bytes((folder / "last.json").read_bytes())
    push(str(resumed), str(folder))
    assert (folder / "last.pt").read_bytes() == first


def test_right_after_the_kill_the_checkpoint_is_at_its_name(local_state, tmp_path):
    """What a reader outside drivestage opens (``torch.load('/nas/run/last.pt')``, ``cp``):
    the verified checkpoint at its name, as before the push began."""
    folder, first = _killed_state(tmp_path)
    assert (folder / "last.pt").read_bytes() == first
