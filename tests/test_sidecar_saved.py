"""A sidecar's ``saved`` (format 3): within a run, the verified checkpoint saved last is never
deleted by count or age retention. A sidecar on Drive that claims more progress than its run
made (``"epoch": 1000000000``: damaged, or written by a buggy tool) then no longer gets the
run's real newest checkpoint deleted by ``prune`` (which has no local files to trust) or by a
push that does not hold it. An honest run keeps nothing more than before, whatever order its
uploads finished in; sidecars without ``saved`` are ranked as before.

Through the real stack against the emulator (the trainer's own save for the last part); what
is asserted is the exact set of files left on Drive (name -> md5s)."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from drivestage import sidecar
from drivestage.cli import cli
from drivestage.retention import Candidate, RetentionPolicy, plan
from drivestage.upload_tree import push
from _checkpoints import RUN, md5, save, sidecar_json
from _drive_state import live_md5s

FOLDER = "Models/logs"
#: The honest run's epoch_00N was saved at T0 + 60 N: an hour ago, a minute apart.
T0 = time.time() - 3600


def _live(emu) -> dict:
    return live_md5s(emu, FOLDER)


def _put(emu, stem, epoch, saved, run=RUN) -> dict:
    """A checkpoint and its sidecar (vouching for its bytes) on Drive."""
    data = os.urandom(2000)
    side = sidecar_json(epoch, data, run, saved)
    emu.add_file(f"{FOLDER}/{stem}.pt", data)
    emu.add_file(f"{FOLDER}/{stem}.json", side)
    return {f"{stem}.pt": [md5(data)], f"{stem}.json": [md5(side)]}


def _honest(emu, *, saved=True) -> list[dict]:
    """epoch_001..epoch_003 of RUN, format 3 (``saved`` increasing) or format 2."""
    return [_put(emu, f"epoch_{e:03d}", e, T0 + 60 * e if saved else None) for e in (1, 2, 3)]


def _liar(emu, saved: object = T0 + 90) -> dict:
    """An epoch_002-style checkpoint of the same run whose sidecar claims 10**9 epochs; saved
    (it says) between epoch_001 and epoch_002."""
    return _put(emu, "epoch-002", 10**9, saved)


def _prune(*extra):
    result = CliRunner().invoke(cli, ["prune", f"drive:{FOLDER}", "--keep-last", "1", *extra])
    assert result.exit_code == 0, result.output
    return result


def _reasons(output: str) -> dict:
    """NAME -> (ACTION, REASON) from prune's table."""
    out = {}
    for line in output.splitlines()[1:-1]:
        action, _size, _unit, name, *why = line.split()
        out[name] = (action, " ".join(why))
    return out


# ------------------------------------------------- 1. prune beside a liar

def test_prune_keeps_the_run_saved_last_beside_a_liar_claiming_more_progress(emulator,
                                                                               drive_env, env):
    e1, e2, e3 = _honest(emulator)
    liar = _liar(emulator)
    result = _prune()
    assert _live(emulator) == {**liar, **e3}
    why = _reasons(result.stdout)
    assert why["epoch_003.pt"] == ("keep", "saved last")
    assert why["epoch-002.pt"] == ("keep", "newest verified, newest, last 1")
    assert why["epoch_002.pt"][0] == why["epoch_001.pt"][0] == "delete"
    _prune()                                            # a second prune: nothing more goes
    assert _live(emulator) == {**liar, **e3}


def test_the_run_saved_last_stays_beside_a_liar_through_a_push_that_does_not_hold_it(
        emulator, store, env):
    """A push from a machine whose folder holds none of the run's checkpoints (a fresh
    runtime, a results-only folder): its retention is prune's."""
    e1, e2, e3 = _honest(emulator)
    liar = _liar(emulator)
    src = env / "elsewhere"
    src.mkdir()
    (src / "results.csv").write_bytes(b"epoch,map50\n")
    push(str(src), FOLDER, RetentionPolicy(keep_last=1), store=store)
    assert _live(emulator) == {**liar, **e3, "results.csv": [md5(b"epoch,map50\n")]}


# ------------------------------------------------- 2. honest runs keep one

def test_an_honest_run_keeps_exactly_one(emulator, drive_env, env):
    e1, e2, e3 = _honest(emulator)
    result = _prune()
    assert _live(emulator) == e3
    assert "saved last" not in result.stdout


def test_an_honest_run_pushed_in_one_parallel_push_keeps_exactly_one(emulator, drive_env,
                                                                      env):
    """Two checkpoints sent by one push (uploads in parallel: the older may finish last)."""
    src = str(env / "logs")
    first = save(src, "epoch_001", 1, 1_000, saved=T0 + 60)
    second = save(src, "epoch_002", 2, 2_000, saved=T0 + 120)
    result = CliRunner().invoke(cli, ["push", src, f"drive:{FOLDER}", "--jobs", "4"])
    assert result.exit_code == 0, result.output
    assert _live(emulator) == {**first, **second}
    # Whatever order the uploads finished in, the same: epoch_001 arrived last.
    older = emulator.find(f"{FOLDER}/epoch_001.pt")["id"]
    emulator.store.update_meta(older, {"modifiedDate": "2099-01-01T00:00:00.000Z"},
                               set_modified=True)
    _prune()
    assert _live(emulator) == second


def test_pushes_of_an_honest_run_keep_exactly_one(emulator, store, env):
    """The trainer's loop: save, push with --keep-last 1, save, push..."""
    src = str(env / "logs")
    policy = RetentionPolicy(keep_last=1)
    for epoch in (1, 2, 3):
        now = save(src, f"epoch_{epoch:03d}", epoch, 1_000 * epoch, saved=T0 + 60 * epoch)
        result = push(src, FOLDER, policy, store=store)
        assert _live(emulator) == now
        assert not [d for d in result.plan if "saved last" in d.reason]


# ------------------------------------------------- 3. sidecars without `saved`

def test_format_2_sidecars_are_ranked_as_before(emulator, drive_env, env):
    """No save times: no extra protection. The liar ranks as the run's newest and the real
    newest goes, as before (the limit the CHANGELOG states)."""
    _honest(emulator, saved=False)
    liar = _liar(emulator, saved=None)
    result = _prune()
    assert _live(emulator) == liar
    assert "saved last" not in result.stdout


def test_a_liar_without_saved_beside_an_honest_format_3_run(emulator, drive_env, env):
    e1, e2, e3 = _honest(emulator)
    liar = _liar(emulator, saved=None)
    _prune()
    assert _live(emulator) == {**liar, **e3}


# ------------------------------------------------- 4. hostile `saved`

FAR_FUTURE = time.time() + 10 * 365 * 86400


@pytest.mark.parametrize("saved", ["yesterday", math.nan, math.inf, 1e308, -5.0,
                                   FAR_FUTURE, 10**400, True, [T0], {"t": T0}],
                         ids=["string", "nan", "inf", "1e308", "negative", "far-future",
                              "huge-int", "bool", "list", "object"])
def test_a_hostile_saved_is_no_save_time(emulator, drive_env, env, saved):
    """On the liar: it earns it nothing (the real newest stays); on the real newest: it is
    just not saved last (the next one back is), and prune deletes no more than the old rule."""
    e1, e2, e3 = _honest(emulator)
    liar = _liar(emulator, saved=saved)
    _prune()
    assert _live(emulator) == {**liar, **e3}
    assert sidecar.parse(sidecar_json(10**9, b"x", RUN, saved)).saved is None


def test_a_hostile_saved_on_the_real_newest_keeps_the_one_saved_before_it(emulator,
                                                                          drive_env, env):
    e1 = _put(emulator, "epoch_001", 1, T0 + 60)
    e2 = _put(emulator, "epoch_002", 2, T0 + 120)
    _put(emulator, "epoch_003", 3, FAR_FUTURE)
    liar = _liar(emulator)
    _prune()
    assert _live(emulator) == {**liar, **e2}           # the old rule left the liar alone


def test_parse_bounds_saved():
    now = time.time()
    for good in (0, 1, now - 1, now + 3600, 1_700_000_000):
        assert sidecar.parse(json.dumps({"format": 3, "saved": good})).saved == float(good)
    for bad in ("1", None, -0.5, now + 2 * 86400, 10**400, "NaN"):
        assert sidecar.parse(json.dumps({"format": 3, "saved": bad})).saved is None
    assert sidecar.parse('{"format": 3, "saved": NaN}').saved is None
    assert sidecar.parse('{"format": 3, "saved": Infinity}').saved is None


def test_format_3_round_trips_and_older_forms_still_parse():
    side = sidecar.Sidecar(epoch=3, iteration=30, run="r", md5="a" * 32, size=9, saved=T0)
    data = json.loads(side.to_bytes())
    assert data["format"] == 3 and data["saved"] == T0
    assert sidecar.parse(side.to_bytes()) == side
    assert sidecar.parse(json.dumps({"format": 2, "epoch": 3})).saved is None
    # A later format with fields this version does not know: read for what it knows.
    assert sidecar.parse(json.dumps({"format": 4, "epoch": 3, "saved": T0, "new": [1]})) == \
        sidecar.Sidecar(epoch=3, saved=T0)


# ------------------------------------------------- the pure rule

_runs = st.sampled_from([None, "a", "b"])
_saved = st.none() | st.floats(0, 1e4)
_checkpoints = st.lists(st.builds(
    Candidate, name=st.integers(0, 30).map(lambda e: f"epoch_{e:03d}.pt"),
    size=st.integers(0, 100), modified=st.floats(0, 1e4), epoch=st.none() | st.integers(0, 40),
    verified=st.booleans(), run=_runs, saved=_saved), max_size=12).map(
    lambda files: [dataclasses.replace(f, id=f"id{i}") for i, f in enumerate(files)])
_policies = st.builds(RetentionPolicy, keep_last=st.integers(1, 3),
                      keep_every=st.none() | st.integers(2, 5),
                      keep_runs=st.none() | st.integers(1, 2))


@settings(max_examples=200, deadline=None)
@given(files=_checkpoints, policy=_policies)
def test_save_times_only_ever_keep_more(files, policy):
    """With epochs to order them (the default pattern's names carry one), deletions with save
    times are a subset of those without; and in every run the plan keeps, the verified
    checkpoint saved last is kept."""
    result = plan(files, policy)
    before = plan([dataclasses.replace(f, saved=None) for f in files], policy)
    kept = {d.id for d in result if d.keep}
    assert {d.id for d in result.to_delete} <= {d.id for d in before.to_delete}
    for run in {f.run for f in files if f.id in kept}:
        timed = [f for f in files if f.run == run and f.verified and f.saved is not None]
        if timed:
            last = max(f.saved for f in timed)
            assert {f.id for f in timed if f.saved == last} & kept


def test_without_epochs_an_honest_run_is_ordered_by_saved_not_by_upload():
    """No epoch anywhere (a pattern without one, sidecars without one): the age order is by
    when each was written, so the store's mtimes (the end of each upload) cannot make an
    honest run keep two."""
    policy = RetentionPolicy(keep_last=1, pattern=r"^ckpt_\w+\.pt\Z")
    files = [Candidate("ckpt_a.pt", 9, modified=500.0, id="a", verified=True, saved=100.0),
             Candidate("ckpt_b.pt", 9, modified=400.0, id="b", verified=True, saved=200.0)]
    assert [d.name for d in plan(files, policy) if d.keep] == ["ckpt_b.pt"]
    # Without save times, as before: the one uploaded last is the newest.
    files = [dataclasses.replace(f, saved=None) for f in files]
    assert [d.name for d in plan(files, policy) if d.keep] == ["ckpt_a.pt"]


# ------------------------------------------------- 5. the trainer writes `saved`

def test_the_trainer_records_saved_and_its_run_keeps_the_one_saved_last(emulator, drive_env,
                                                                        local_state, tmp_path):
    """Three epochs through the trainer's writer (the real save and sidecar, then a push with
    keep_last 1 after each) beside the liar; then a push from a fresh machine."""
    import torch

    from trainer.drive import DriveFolder
    from trainer.state import Position
    from trainer.writer import BackgroundWriter, SaveJob

    liar = _liar(emulator, saved=time.time() - 86400)
    out = tmp_path / "run"
    out.mkdir()
    writer = BackgroundWriter(str(out), DriveFolder(f"drive:{FOLDER}", str(out),
                                                    RetentionPolicy(keep_last=1)))
    model = torch.nn.Linear(3, 2)
    before = time.time()
    for epoch in (1, 2, 3):
        state = {"format_version": 2, "model": model.state_dict(), "optimizer": {},
                 "epoch": epoch, "iteration": 10 * epoch, "epoch_iteration": 0,
                 "config": {}, "run": RUN}
        job = SaveJob(state, [f"epoch_{epoch:03d}.pt"], Position(epoch, 10 * epoch, 0))
        writer.submit(job)
        assert writer.wait(job, time.monotonic() + 60) and job.written
    assert writer.close() is True and writer.last_error is None
    after = time.time()
    saved = [sidecar.parse((out / f"epoch_{e:03d}.json").read_bytes()).saved for e in (1, 2, 3)]
    assert before <= saved[0] < saved[1] < saved[2] <= after
    e3 = {name: [md5((out / name).read_bytes())] for name in ("epoch_003.pt", "epoch_003.json")}
    assert _live(emulator) == {**liar, **e3}

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    result = CliRunner().invoke(cli, ["push", str(fresh), f"drive:{FOLDER}", "--keep-last", "1"])
    assert result.exit_code == 0, result.output
    assert _live(emulator) == {**liar, **e3}
    _prune()
    assert _live(emulator) == {**liar, **e3}


def test_a_push_labels_what_it_just_wrote_apart_from_protect(emulator, store, env):
    liar = _liar(emulator)
    src = str(env / "logs")
    e4 = save(src, "epoch_004", 4, 1_000, saved=time.time())
    result = push(src, FOLDER, RetentionPolicy(keep_last=1), store=store,
                  protect=["epoch-002.pt"])
    assert _live(emulator) == {**liar, **e4}
    why = {d.name: d.reason for d in result.plan}
    assert why["epoch_004.pt"].split(", ")[0] == "just written"
    assert "protected" not in why["epoch_004.pt"]
    assert why["epoch-002.pt"].split(", ")[0] == "protected"


def test_push_delete_spares_the_run_saved_last_beside_a_liar(emulator, store, env):
    """``push --delete`` removes what SRC lacks but never a run's newest verified checkpoint;
    beside a liar claiming more progress, the run's real newest (saved last) is spared too."""
    e1, e2, e3 = _honest(emulator)
    liar = _liar(emulator)
    src = env / "elsewhere"
    src.mkdir()
    (src / "results.csv").write_bytes(b"epoch,map50\n")
    push(str(src), FOLDER, store=store, delete=True)
    assert _live(emulator) == {**liar, **e3, "results.csv": [md5(b"epoch,map50\n")]}
