"""A run's mark half set by an outage: the PRIVATE property inserted, the PUBLIC one refused
(attackds32).

A mark is two properties.insert since marks stopped being one files.patch: this app's
PRIVATE property, then the PUBLIC one every OAuth client sees. Drive answering 503 to the
second left the first: a machine signed in with another client (Colab's and a laptop's
differ) saw no mark until the run's next push tried again (none, where the VM went away
after that push), and its ``mirror ./runs drive:runs --delete`` trashed the run's
checkpoints. The PUBLIC one goes
first now: half a mark is one every client sees.
"""
from __future__ import annotations

import logging

from _drive_state import live_md5s
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from test_runmark30_marks import _fresh_vm, _mirror_once
from trainer.drive import DriveFolder, retention_policy

from drivestage.drive.resources import RUN_MARK


def test_a_mark_half_set_by_an_outage_is_one_every_client_sees(
        emulator, env, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    folder_id = emulator.add_folder("runs/exp1")   # made by hand, before the run
    plan, inserts = emulator.faults.plan, []

    def second_insert_fails(method, target, **kw):   # every request, as it arrives
        planned = plan(method, target, **kw)
        if method == "POST" and target.split("?")[0].endswith(f"{folder_id}/properties"):
            inserts.append(target)
            if len(inserts) == 1:   # the next two attempts (the second insert's) answer 503
                emulator.faults.inject(method="POST", path=f"{folder_id}/properties",
                                       status=503, times=2)
        return planned

    monkeypatch.setattr(emulator.faults, "plan", second_insert_fails)
    run_dir = tmp_path / "old-vm" / "exp1"
    run_dir.mkdir(parents=True)
    drive = DriveFolder("drive:runs/exp1", str(run_dir), retention_policy(0, 0, None))
    with caplog.at_level(logging.WARNING):
        _save(str(run_dir), 1)
        drive.push()   # and the VM is preempted: no later push of this process
    kept = live_md5s(emulator, "runs/exp1")

    emulator.set_token_app("test-token", "laptop-client")   # another OAuth client's machine
    _mirror_once(_fresh_vm(tmp_path, monkeypatch))

    assert set(kept) == {"epoch_001.pt", "epoch_001.json"}
    assert set(live_md5s(emulator, "runs")) == {"exp1", "exp3"}   # (exp1 was trashed whole)
    assert live_md5s(emulator, "runs/exp1") == kept
    assert [(p["visibility"], p["key"]) for p in emulator.properties_of(folder_id)] == [
        ("PUBLIC", RUN_MARK)]
    # (marked for every client: no "could not mark … only this machine knows")
    assert not [r for r in caplog.records if "could not mark" in r.getMessage()]
