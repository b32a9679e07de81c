"""attacklease42: a run folder on a full Drive that holds as many PUBLIC properties as Drive
allows (30: the run's mark and 29 of other tools'). The claim file did not fit, and its
fallback, a property of the folder (room41), was refused too (403
propertyCountLimitExceeded): every push stopped with "the run's lease is not taken yet
(Drive did not answer this trainer's tries to take it) ... the next push tries again", which
no next push did, and nothing said what to do. The refusal of the fallback now stands as the
storage refusal it follows: the line says Drive's storage is full and to free some space
(the claim file then fits). Nothing is removed meanwhile.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from _lease_pairs import on_drive
from drivestage.store import RemoteEntry
from test_attackguard40_full import FULL
from test_fullclaim41_lease import _full, _props, _trainer
from test_lease39_pending_guard import _claims


def test_a_folder_at_drives_limit_of_public_properties_on_a_full_drive_says_free_space(
        drive_env, emulator, store, tmp_path, fast_retries, monkeypatch):
    from trainer.errors import LeaseNotTakenError
    from trainer.lease import release_all

    _, before = _full(emulator, tmp_path, monkeypatch)
    folder = RemoteEntry(emulator.find("runs/exp")["id"], "exp", True)
    public = [p for p in emulator.properties_of(folder.id) if p["visibility"] == "PUBLIC"]
    for n in range(30 - len(public)):
        store.set_public_property(folder, f"other-tool-{n}", "x")
    try:
        run, _ = _trainer(tmp_path, "run", 4)
        assert run.lease.pending
        for _ in range(2):
            with pytest.raises(LeaseNotTakenError) as caught:
                run.push()
            assert str(caught.value) == FULL
            assert on_drive(emulator) == before and _claims(emulator) == [] \
                and _props(emulator) == []
    finally:
        release_all()
