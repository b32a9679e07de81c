"""A sidecar that vouches for the checkpoint it describes and the one coming (a push's first
write before it updates a checkpoint in place: :mod:`drivestage.sidecar_phases`), read by
every reader alike (contrib36)."""
from __future__ import annotations

import hashlib
import json

from drivestage import sidecar
from drivestage.sidecar import Described, Sidecar
from drivestage.store import RemoteEntry

A, B, C = "a" * 32, "b" * 32, "c" * 32


def _two_phase(**coming: object) -> bytes:
    body = {"format": 3, "epoch": 1, "iteration": 10, "run": "r", "md5": A, "size": 5,
            "coming": {"format": 3, "epoch": 2, "iteration": 20, "run": "r", "md5": B,
                       "size": 6, **coming}}
    return json.dumps(body).encode()


def _entry(md5: str, modified: float = 0.0, id_: str = "") -> RemoteEntry:
    return RemoteEntry(id=id_ or md5[:4], name="last.pt", is_dir=False, size=5, md5=md5,
                       modified=modified)


def test_a_two_phase_sidecar_speaks_for_each_of_its_two_files():
    side = sidecar.parse(_two_phase())
    assert side is not None and side.md5s == {A, B}
    assert (side.speaking_for(A).epoch, side.speaking_for(B).epoch) == (1, 2)
    assert side.speaking_for(B.upper()).iteration == 20
    assert side.speaking_for(C) is side and side.speaking_for(None) is side
    assert [side.vouches_for(m) for m in (A, B, C, None)] == [True, True, False, True]
    # Described (every store reader's pair): the description of the bytes listed.
    assert (Described("last.pt", side, B).sidecar.epoch, Described("last.pt", side, B).verified,
            Described("last.pt", side, A).sidecar.epoch, Described("last.pt", side, C).verified
            ) == (2, True, 1, False)


def test_a_coming_entry_that_vouches_for_nothing_is_no_entry():
    """No md5 (it would vouch for any bytes), not an object, a ``coming`` inside the one
    coming (never written: one level is read): the sidecar is the plain one it holds."""
    for data in (_two_phase(md5=None), _two_phase(md5="xyz"),
                 json.dumps({"epoch": 1, "md5": A, "coming": [B]}).encode(),
                 json.dumps({"epoch": 1, "md5": A, "coming": B}).encode()):
        side = sidecar.parse(data)
        assert side is not None and (side.epoch, side.coming, side.md5s) == (1, None, {A})
    nested = sidecar.parse(_two_phase(coming={"epoch": 3, "md5": C}))
    assert nested is not None and nested.md5s == {A, B} and nested.coming is not None
    assert nested.coming.coming is None


def test_only_a_two_phase_sidecar_writes_the_key():
    """A plain sidecar's bytes are as before (an older reader's, and the next push's equal
    test, see no change); a two-phase one round-trips."""
    plain = Sidecar(epoch=1, md5=A, size=5, run="r")
    assert "coming" not in json.loads(plain.to_bytes())
    both = Sidecar(epoch=1, md5=A, size=5, run="r", coming=Sidecar(epoch=2, md5=B, size=6))
    again = sidecar.parse(both.to_bytes())
    assert again == both
    assert json.loads(both.to_bytes())["md5"] == A   # what an older reader reads


def test_the_copy_read_among_same_named_copies():
    """Among same-named copies, one whose md5 the sidecar names itself first (an older
    reader's choice), else the one coming's; one the sidecar names neither stays unread
    while another is vouched for; held_by keeps the vouched old copy beside another one."""
    side = sidecar.parse(_two_phase())
    a, b, c = _entry(A, 1.0), _entry(B, 2.0), _entry(C, 3.0)
    assert sidecar.vouched([a, b, c], side) is a
    assert sidecar.vouched([b, c], side) is b
    assert sidecar.vouched([c], side) is c    # (not verified: Described says so)
    data = _two_phase()
    assert sidecar.held_by(data, b, [a]) == [] and sidecar.held_by(data, a, [b]) == []
    assert sidecar.held_by(data, c, [a, b]) == [a]


def test_a_local_copy_of_a_two_phase_sidecar_speaks_for_the_file_beside_it(tmp_path):
    """Pulled, or written by a resume beside the fetched file, while a push was between its
    writes: read for the file beside it (hashed then), and without ``coming`` (a record the
    trainer writes from it must not vouch for bytes that are not there)."""
    for body, epoch in ((b"old", 1), (b"new", 2), (b"other", 1)):
        md5 = hashlib.md5(body).hexdigest()
        ckpt = tmp_path / "last.pt"
        ckpt.write_bytes(body)
        data = json.loads(_two_phase())
        if epoch == 1 and body == b"old":
            data["md5"] = md5
        if epoch == 2:
            data["coming"]["md5"] = md5
        (tmp_path / "last.json").write_bytes(json.dumps(data).encode())
        got = sidecar.on_disk(sidecar.read(str(tmp_path / "last.json")), str(ckpt))
        assert got is not None and (got.epoch, got.coming) == (epoch, None)
    assert sidecar.on_disk(None, str(tmp_path / "last.pt")) is None


def test_the_trainer_copies_a_checkpoint_beside_a_two_phase_sidecar(tmp_path):
    """A pulled (or fetched) last.pt whose sidecar vouches for it as the one coming, copied
    by the trainer (``copy_checkpoint``: to best.pt, epoch_NNN.pt): its sidecar describes the
    bytes copied, which is no change while copying; the copy reads as epoch 2."""
    from trainer import checkpoint as ckpt

    body = b"new bytes"
    (tmp_path / "last.pt").write_bytes(body)
    data = json.loads(_two_phase())
    data["coming"].update(md5=hashlib.md5(body).hexdigest(), size=len(body))
    (tmp_path / "last.json").write_bytes(json.dumps(data).encode())
    ckpt.copy_checkpoint(str(tmp_path / "last.pt"), str(tmp_path / "best.pt"))
    assert ckpt.read_sidecar(str(tmp_path / "best.pt")).epoch == 2


def test_a_resume_reads_the_save_time_of_the_copy_it_takes():
    """The ``saved`` a resume compares with this folder's (``trainer.resume._raw_saved``) is
    the one of the copy on Drive it takes: the one coming's where that is the copy there."""
    from trainer.drive import RemoteCheckpoint
    from trainer.resume import _raw_saved

    data = json.loads(_two_phase())
    data["saved"], data["coming"]["saved"] = 1000.0, 2000.0
    raw = json.dumps(data).encode()
    for md5, saved in ((A, 1000.0), (B, 2000.0)):
        side = sidecar.parse(raw)
        remote = RemoteCheckpoint(_entry(md5), Described("last.pt", side, md5), "drive:x", raw)
        assert (remote.sidecar.saved, _raw_saved(remote)) == (saved, saved)
