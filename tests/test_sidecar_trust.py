"""What a push trusts of the sidecars on Drive: a lying one never stops new checkpoints from
reaching Drive, and one without a local copy still keeps the old copy it vouches for.

Both through the real stack against the emulator; what is asserted is the exact set of files
left on Drive (name -> md5s), after every push."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from drivestage.cli import cli
from drivestage.retention import RetentionPolicy
from drivestage.upload_tree import push
from _checkpoints import RUN, md5, save, sidecar_json
from _drive_state import live_md5s

FOLDER = "Models/logs"


def _live(emu, folder=FOLDER) -> dict:
    return live_md5s(emu, folder)


def _liar(emu, stem="epoch_003", run=RUN) -> dict:
    """A checkpoint on Drive whose sidecar claims an absurd epoch (damaged, or written by a
    buggy tool), vouching for its bytes all the same."""
    data = os.urandom(2000)
    side = sidecar_json(10**9, data, run)
    emu.add_file(f"{FOLDER}/{stem}.pt", data)
    emu.add_file(f"{FOLDER}/{stem}.json", side)
    return {f"{stem}.pt": [md5(data)], f"{stem}.json": [md5(side)]}


# ------------------------------------------------- 1. a lying sidecar on Drive

def test_a_lying_remote_sidecar_never_stops_new_checkpoints_reaching_drive(emulator,
                                                                            drive_env, env):
    """Drive holds epoch_003 whose sidecar says epoch 10**9 (same run). With --keep-last 1
    it ranked as the run's newest forever: every push planned each new local checkpoint for
    deletion and never sent it. The checkpoint just written is now never pruned by the push
    that sends it; the liar only wastes quota."""
    liar = _liar(emulator)
    src = str(env / "logs")
    runner = CliRunner()
    args = ["push", src, f"drive:{FOLDER}", "--keep-last", "1"]

    e4 = save(src, "epoch_004", 4, 1_000)
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "not sent" not in result.stderr
    assert _live(emulator) == {**liar, **e4}

    e5 = save(src, "epoch_005", 5, 2_000)
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert _live(emulator) == {**liar, **e5}       # epoch_004 went once epoch_005 was verified

    # The trainer keeps only its newest locally; the next checkpoint's upload fails: the
    # verified epoch_005 stays until its replacement is verified.
    for name in ("epoch_004.pt", "epoch_004.json"):
        os.remove(os.path.join(src, name))
    e6 = save(src, "epoch_006", 6, 3_000)
    emulator.faults.inject(method="POST", path=r"^/upload/drive/v2/files", status=400,
                           reason="badRequest", times=None)
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert _live(emulator) == {**liar, **e5}
    emulator.faults.clear()
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert _live(emulator) == {**liar, **e6}


def test_a_checkpoint_pushed_before_its_sidecar_keeps_the_verified_one_beside_a_liar(
        emulator, store, env):
    """A push between the trainer's writes of epoch_005.pt and epoch_005.json, with a liar
    as its run's newest: the verified epoch_004 (what a resume needs once the liar is seen
    for what it is) stays until epoch_005 is verified too."""
    liar = _liar(emulator)
    src = str(env / "logs")
    policy = RetentionPolicy(keep_last=1)
    e4 = save(src, "epoch_004", 4, 1_000)
    push(src, FOLDER, policy, store=store)
    assert _live(emulator) == {**liar, **e4}
    e5 = save(src, "epoch_005", 5, 2_000)
    side = os.path.join(src, "epoch_005.json")
    with open(side, "rb") as fh:
        side_bytes = fh.read()
    os.remove(side)                                  # not written yet
    push(src, FOLDER, policy, store=store)
    assert _live(emulator) == {**liar, **e4, "epoch_005.pt": e5["epoch_005.pt"]}
    with open(side, "wb") as fh:
        fh.write(side_bytes)
    push(src, FOLDER, policy, store=store)
    assert _live(emulator) == {**liar, **e5}


def test_just_written_names_the_newest_local_checkpoint_and_autosave_of_each_kept_run():
    """The pure rule: among the local files, per run the policy keeps, the newest checkpoint
    (plan's age order: epochs) and the newest autosave (their numbers); remote files never."""
    from drivestage.retention import Candidate, just_written

    files = [
        Candidate("epoch_003.pt", epoch=10**9, run="r2", id="remote", modified=50.0),
        Candidate("autosave_99999999.pt", run="r2", id="remote2", modified=50.0),
        Candidate("epoch_004.pt", epoch=4, run="r2", modified=30.0),
        Candidate("epoch_005.pt", epoch=5, run="r2", modified=20.0),    # copied back: older
        Candidate("autosave_00000700.pt", run="r2", modified=10.0),
        Candidate("autosave_00000600.pt", run="r2", modified=40.0),
        Candidate("epoch_006.pt", run=None, modified=60.0),             # sidecar not yet here
        Candidate("epoch_009.pt", epoch=9, run="r1", modified=1.0),     # an older run
        Candidate("notes.txt", modified=99.0),
    ]
    local = [c.name for c in files if c.id is None]
    assert just_written(files, RetentionPolicy(keep_last=1), local) == {
        "epoch_005.pt", "autosave_00000700.pt", "epoch_006.pt", "epoch_009.pt"}
    assert just_written(files, RetentionPolicy(keep_last=1, keep_runs=1), local) == {
        "epoch_005.pt", "autosave_00000700.pt", "epoch_006.pt"}
    assert just_written(files, RetentionPolicy(keep_last=1), []) == set()


def test_checkpoint_sync_sends_every_checkpoint_past_a_lying_sidecar(emulator, store, env):
    """The same through CheckpointSync's retention (sidecars naming no run, as on_save
    writes them): each epoch reaches Drive, and the previous one goes once it is there."""
    from drivestage.hooks import CheckpointSync

    liar = _liar(emulator, "epoch_002", run=None)
    run = env / "run"
    sync = CheckpointSync(FOLDER, RetentionPolicy(keep_last=1), local_dir=str(run),
                          store=store)
    try:
        for epoch in (3, 4, 5):
            data = os.urandom(2500)
            (run / f"epoch_{epoch:03d}.pt").write_bytes(data)
            sync.on_save(str(run / f"epoch_{epoch:03d}.pt"), epoch, {"map50": 0.1})
            sync.flush(60)
            live = _live(emulator)
            assert {k: v for k, v in live.items() if k not in liar} == {
                f"epoch_{epoch:03d}.pt": [md5(data)],
                f"epoch_{epoch:03d}.json": [md5((run / f"epoch_{epoch:03d}.json").read_bytes())]}
            assert {k: live[k] for k in liar} == liar
    finally:
        sync.on_train_end(60)


# ------------------------------------------------- 2. a sidecar on Drive and not here

def _resume_md5(store, env) -> str:
    """The md5 of the checkpoint a resume on a fresh machine would take."""
    from drivestage.hooks import CheckpointSync

    sync = CheckpointSync(FOLDER, local_dir=str(env / "fresh"), store=store)
    try:
        entry = sync.latest_remote_checkpoint()
    finally:
        sync.mirror.stop(flush=False)
    assert entry is not None
    return entry.md5


def test_a_changed_checkpoint_without_its_local_sidecar_keeps_the_vouched_copy(emulator,
                                                                               store, env):
    """Drive has best.pt and best.json naming its md5; here best.json is gone (deleted, or
    the trainer crashed between writing best.pt and best.json) and best.pt changed. The push
    replaced best.pt and deleted the old copy: Drive's sidecar then named an md5 no copy had,
    and the verified checkpoint was lost. The old copy now stays (one, never more) until a
    sidecar vouches for a new one."""
    src = str(env / "logs")
    first = save(src, "best", 3, 1_000)
    push(src, FOLDER, store=store)
    assert _live(emulator) == first
    old = first["best.pt"][0]

    os.remove(os.path.join(src, "best.json"))
    newer = [os.urandom(3100), os.urandom(3200)]
    for data in newer:                                # saved twice, sidecar still missing
        with open(os.path.join(src, "best.pt"), "wb") as fh:
            fh.write(data)
        push(src, FOLDER, store=store)
        assert _live(emulator) == {"best.pt": sorted([old, md5(data)]),
                                   "best.json": first["best.json"]}
        assert _resume_md5(store, env) == old
    push(src, FOLDER, store=store)                    # unchanged: nothing repaired away
    assert _live(emulator) == {"best.pt": sorted([old, md5(newer[-1])]),
                               "best.json": first["best.json"]}

    side = sidecar_json(4, newer[-1])                        # the trainer writes the sidecar again
    with open(os.path.join(src, "best.json"), "wb") as fh:
        fh.write(side)
    push(src, FOLDER, store=store)
    assert _live(emulator) == {"best.pt": [md5(newer[-1])], "best.json": [md5(side)]}
    assert _resume_md5(store, env) == md5(newer[-1])


def test_duplicates_repaired_keep_the_copy_a_remote_only_sidecar_vouches_for(emulator,
                                                                              store, env):
    """Another machine left two copies of best.pt, Drive's best.json naming the older; the
    local best.pt equals the newer and has no sidecar here. The repair kept the newest and
    deleted the only copy the sidecar vouches for."""
    vouched, other = os.urandom(2000), os.urandom(2100)
    older = emulator.add_file(f"{FOLDER}/best.pt", vouched)
    emulator.add_file(f"{FOLDER}/best.pt", other)
    # Made in one millisecond, the two would share a modifiedDate: the vouched one is older.
    emulator.store.update_meta(older, {"modifiedDate": "2020-01-01T00:00:00.000Z"},
                               set_modified=True)
    side = sidecar_json(2, vouched)
    emulator.add_file(f"{FOLDER}/best.json", side)
    src = env / "logs"
    src.mkdir()
    (src / "best.pt").write_bytes(other)
    result = push(str(src), FOLDER, store=store)
    assert result.unchanged == 1 and result.uploaded == []
    assert _live(emulator) == {"best.pt": sorted([md5(vouched), md5(other)]),
                               "best.json": [md5(side)]}
    assert _resume_md5(store, env) == md5(vouched)
