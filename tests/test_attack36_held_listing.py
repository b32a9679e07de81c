"""Machine A's push into a shared local DEST (a NAS) removes the old copy it kept aside
(``.drivestage-held.<random>.last.pt``, local_held) once its new pair is verified: at every
push that changed a checkpoint. A reader of DEST on machine B at that moment (an evaluation
job's ``latest_remote_checkpoint``, ``pull /nas/run ./copy``, B's own push) listed the
folder, saw the copy, and found it gone when it came to hash it: B's push (or any library
caller) ended in a ``FileNotFoundError`` traceback (two machines' pushes into one NAS folder:
2 in 15 rounds, attack36), a pull in ``Error: cannot stage /nas/run into …: No such file or
directory (/nas/run/.drivestage-held.….last.pt)``, exit 1.
The listing takes a file removed between its stat and its hash for one removed before the
look (as it does one removed before its stat).

The removal is made to happen at that moment deterministically: the hash of the copy aside
waits (``wait_settled``) as the listing's own code does, and A's removal lands there."""
from __future__ import annotations

import os

import pytest

from _checkpoints import save
from _cli import run

T0 = 1764600000.0


def test_a_copy_aside_removed_while_a_reader_lists_dest_is_no_traceback(
        local_state, tmp_path, monkeypatch):
    import drivestage.localdir as localdir
    from drivestage.local_held import PREFIX
    from drivestage.upload_tree import push

    src, folder = tmp_path / "run", tmp_path / "nas" / "run"
    save(str(src), "last", 1, T0)
    push(str(src), str(folder))
    # The moment after A's new pair is verified: A's old copy still aside beside it.
    aside = folder / f"{PREFIX}0123456789ab.last.pt"
    aside.write_bytes(os.urandom(3000))
    held_ino = aside.stat().st_ino
    real = localdir.wait_settled

    def a_removes_its_copy(st):
        if st.st_ino == held_ino and aside.exists():
            aside.unlink()   # machine A's push, done: its copy aside goes
        return real(st)
    monkeypatch.setattr(localdir, "wait_settled", a_removes_its_copy)
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "machine-b"))

    code, _, err = run("pull", str(folder), str(tmp_path / "copy"))

    assert code == 0, err
    copy = tmp_path / "copy" / "run"
    assert (copy / "last.pt").read_bytes() == (folder / "last.pt").read_bytes()
    assert (copy / "last.json").read_bytes() == (folder / "last.json").read_bytes()
