"""leasefull42: a trainer holding its lease by a PROPERTY (Drive's storage full: room41) whose
run folder is renamed on Drive mid-run, Drive full still. Its next push follows the path
(attackpush41) and makes its claim anew there: a claim file, which the full Drive refused,
so each push failed on storage with drivestage's line naming the claim's temporary file
("Not enough Drive storage for /tmp/.trainer-lease-….json -> …"), for as long as Drive stayed
full. Now the claim made anew is settled as at the start, a property where the file does not
fit: the lease is held in the path's folder (a trainer started there is refused), and a push
fails only where its own files do not fit, as drivestage says of them. Where
Drive refuses the property too, the push fails in one line naming the lease's claim and what
to do.
The real DriveFolder and RunLease (PyDrive2 stack) against the emulator."""
from __future__ import annotations

import pytest

from _lease_pairs import save_pair
from test_attacklease41_moved_full import _fill, _in
from test_fullclaim41_lease import _full, _props, _trainer


#: 3 s renewals: a trainer started beside the holder sees one within seconds (refused).
MINUTES = 0.05


def _moved(emulator, tmp_path, monkeypatch, minutes: float = MINUTES):
    """A holds the lease by a property and has pushed; its folder renamed to exp_old; Drive
    full to 10 B; A's next pair saved: (A's folder, the old folder's id)."""
    _full(emulator, tmp_path, monkeypatch)
    a, _ = _trainer(tmp_path, "a", 4, minutes=minutes)
    a.push()   # (held by a property; its room made)
    old = emulator.find("runs/exp")["id"]
    emulator.store.update(old, title="exp_old")
    _fill(emulator, 10)
    return a, old, save_pair(tmp_path / "a", "epoch_005.pt", 5)


def test_a_property_holder_whose_folder_moved_on_a_full_drive_goes_on_by_a_property(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    """Its claim made anew is a property of the path's folder: the lease held there (a
    trainer started there is refused), and the push fails only where its own pair does not
    fit (drivestage's line for the checkpoints: nothing in the new folder to prune); space
    freed, the pair goes, under the same property (no claim file)."""
    from drivestage.errors import QuotaExceededError
    from trainer.errors import LeaseHeldError
    from trainer.lease import release_all

    try:
        a, old, ours = _moved(emulator, tmp_path, monkeypatch)
        with pytest.raises(QuotaExceededError) as caught:
            a.push()
        assert str(caught.value).startswith(
            "Not enough Drive storage for 2 file(s) into drive:runs/exp: "), str(caught.value)
        new = emulator.find("runs/exp")["id"]
        assert new != old and a.lease.lost is None and not a.lease.pending
        assert _props(emulator) == [a.lease.name[:-5]]   # (the path's folder's; old: none)
        assert [p for p in emulator.properties_of(old)
                if p["key"].startswith("trainer-lease-")] == []
        with pytest.raises(LeaseHeldError, match="holds its lease"):
            _trainer(tmp_path, "b", 6, minutes=MINUTES)   # (started at the path: refused)
        _fill(emulator, 3000)   # (room for the pair)
        a.push()
        assert a.lease.lost is None and _in(emulator, new) == sorted(ours)
        assert _props(emulator) == [a.lease.name[:-5]]
    finally:
        release_all()


def test_a_drive_that_refuses_the_property_too_fails_the_push_naming_the_lease_claim(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    from drivestage.errors import QuotaExceededError
    from trainer.lease import release_all

    try:
        # (60 s renewals: no trainer here needs to see one, and a renewal that came first
        # on a loaded machine, 3 s after the start, made the claim anew itself; the push then
        # renewed that property in place and failed on drivestage's own line for it.)
        a, old, ours = _moved(emulator, tmp_path, monkeypatch, minutes=1.0)
        _fill(emulator, 0)
        emulator.full_refuses_property_writes = True
        for _ in range(2):
            with pytest.raises(QuotaExceededError) as caught:
                a.push()
            assert str(caught.value) == (
                f"drive:runs/exp: the run's lease claim {a.lease.name[:-5]} did not fit in the "
                "folder its path leads to now (Drive's storage is full; this run's folder was "
                "moved, renamed or trashed on Drive, or the claim was removed), so nothing "
                "more is pushed there; free some space on Drive (empty its trash, remove old "
                "runs), and the next push makes the claim and goes on")
            assert _in(emulator, emulator.find("runs/exp")["id"]) == []
        emulator.full_refuses_property_writes = False
        _fill(emulator, 3000)   # (room for the claim and the pair)
        a.push()   # (its claim made anew: a file now, it fits)
        assert _in(emulator, emulator.find("runs/exp")["id"]) == sorted([*ours, a.lease.name])
        assert a.lease.lost is None
    finally:
        release_all()
