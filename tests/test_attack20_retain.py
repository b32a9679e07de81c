"""Retention across a branch (a run sent back on purpose to an earlier checkpoint): the line
it left behind (further on than the branch point, saved before the branch record) ranks as
older than every checkpoint of the line the run goes on with, so ``keep_last`` keeps that
line's newest first; the line left goes first, never before the record is verified on the
store. Attacked through the real path (``record_branch`` and the writer's push against the
emulator), ``drivestage prune`` on Drive and on the run folder, a branch sent back twice or
back to the line it left, a SIGKILL in the record's push, a second machine's clock, and a
run never sent back (unchanged)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from trainer import checkpoint as ckpt
from test_attack19_branch import (FOLDER, HOUR, _decide, _folder, _line, _on_drive, _put,
                                  _record, _state, _status)
from test_attack19_branch import drive  # noqa: F401 (fixture)


def _policy(keep_last: int = 3):
    from trainer.drive import retention_policy

    return retention_policy(keep_last, 0, None)


def _epochs(names, paired: bool = True) -> set[int]:
    """The epochs of the epoch_NNN.pt files among ``names``; each must have its sidecar, and
    no sidecar is left without its checkpoint (unless not ``paired``: a process killed)."""
    pts = {n for n in names if n.startswith("epoch_") and n.endswith(".pt")}
    assert not paired or {n[:-3] + ".json" for n in pts} == {n for n in names if n.startswith("epoch_")
                                               and n.endswith(".json")}, sorted(names)
    return {int(n[6:9]) for n in pts}


def _drive_epochs(emu, paired: bool = True) -> set[int]:
    return _epochs(_on_drive(emu), paired)


def _ten(logs, emu, keep_last: int = 3) -> dict:
    """Epochs 1-10 trained here; Drive holds the newest ``keep_last`` (what retention left)."""
    made = _line(logs, list(range(1, 11)))
    for e in range(11 - keep_last, 11):
        _put(emu, made[e])
    return made


def _save(logs, epoch: int, run: str = "r1", after: float = 0.0, writer=None) -> str:
    """The branch's next epoch: new bytes under its name (never those of an earlier save),
    saved after ``after`` (or at ``writer.taken()``, as the trainer dates it). Never dated
    ahead of the clock: Drive would date it back to its arrival, and a push's parallel
    uploads arrive in any order."""
    when = writer.taken() if writer is not None else max(time.time(), after + 1e-3)
    return ckpt.save_checkpoint(_state(run, epoch, branch_bytes=when),
                                str(logs / f"epoch_{epoch:03d}.pt"), saved=when)


def _saved(path) -> float:
    return ckpt.read_sidecar(str(path)).saved


def _push(logs, keep_last: int = 3):
    result = _folder(logs, _policy(keep_last)).push()
    return result


# --------------------------------------------------------------------------- the example

def test_keep_last_3_keeps_the_line_the_run_goes_on_with(drive, tmp_path):
    """Epochs 8-10 diverged; the user resumes from logs/epoch_005.pt with drive.keep_last 3.
    The record's push leaves Drive the branch's own fallbacks (3, 4, 5: before, 5 beside the
    diverged 8-10), and after the branch saved 6 and 7, Drive holds 5, 6, 7 (before: 7 and
    the diverged 8-10, with 5 and 6 deleted). A later prune keeps the same set; status and a
    fresh machine's resume take epoch 7."""
    from drivestage.pruning import prune

    logs = tmp_path / "logs"
    made = _ten(logs, drive)
    assert _record(logs, _decide(logs, str(made[5])), policy=_policy()) == "epoch_005.pt"
    assert _drive_epochs(drive) == {3, 4, 5}
    _save(logs, 6, after=_saved(made[5]))
    _save(logs, 7, after=_saved(made[6]))
    _push(logs)
    assert _drive_epochs(drive) == {5, 6, 7}
    plan = prune(f"drive:{FOLDER}", _policy())
    assert plan.to_delete == [] and _drive_epochs(drive) == {5, 6, 7}
    assert _status() == "epoch_007.pt"
    assert os.path.basename(_decide(tmp_path / "fresh").path) == "epoch_007.pt"


def test_the_line_left_fills_keep_last_only_behind_the_branch(drive, tmp_path):
    """keep_last 5 and the branch has 5 checkpoints: it keeps them all, and the diverged
    ones go; keep_last 8 keeps the branch's and the newest of the line left behind it
    (older, not gone)."""
    from drivestage.pruning import prune

    logs = tmp_path / "logs"
    made = _line(logs, list(range(1, 11)), drive=drive)
    assert _record(logs, _decide(logs, str(made[5])), policy=_policy(10)) == "epoch_005.pt"
    plan = prune(f"drive:{FOLDER}", _policy(8), dry_run=True)
    assert {d.name for d in plan.to_delete if d.kind == "checkpoint"} == \
        {"epoch_006.pt", "epoch_007.pt"}
    why = {d.name: d.reason for d in plan.to_delete}
    assert why["epoch_006.pt"].startswith("left behind (the run went back to epoch 5)")
    prune(f"drive:{FOLDER}", _policy(5))
    assert _drive_epochs(drive) == {1, 2, 3, 4, 5}
    assert _status() == "epoch_005.pt"


def test_the_run_folder_pruned_keeps_the_same_set(drive, tmp_path):
    """``drivestage prune`` on the run folder itself (a local folder) ranks the line left
    behind the same way: the branch's newest three stay, here as on Drive."""
    from drivestage.pruning import prune

    logs = tmp_path / "logs"
    made = _ten(logs, drive)
    assert _record(logs, _decide(logs, str(made[5])), policy=_policy()) == "epoch_005.pt"
    _save(logs, 6, after=_saved(made[5]))
    prune(str(logs), _policy())
    assert _epochs(os.listdir(logs)) == {4, 5, 6}
    assert ckpt.load_checkpoint(str(logs / "epoch_006.pt"))["branch_bytes"]


# --------------------------------------------------------------------------- sent back twice

def test_sent_back_twice_along_the_branch(drive, tmp_path):
    """Sent back to 5 (8-10 diverged), the branch saves 6 and 7, then is sent back to its
    own 6 (7 diverged too): both records hold. Drive keeps 4, 5, 6, then 5, 6 and the new 7;
    the first 7 and the old 8-10 are gone, and prune agrees."""
    from drivestage.pruning import prune

    logs = tmp_path / "logs"
    made = _ten(logs, drive)
    assert _record(logs, _decide(logs, str(made[5])), policy=_policy()) == "epoch_005.pt"
    six = _save(logs, 6, after=_saved(made[5]))
    first_seven = _saved(_save(logs, 7, after=_saved(six)))
    _push(logs)
    seven_id = _on_drive(drive)["epoch_007.pt"][0]
    assert _record(logs, _decide(logs, six), policy=_policy()) == "epoch_006.pt"
    assert _drive_epochs(drive) == {4, 5, 6}
    assert os.path.basename(_decide(tmp_path / "fresh").path) == "epoch_006.pt"
    _save(logs, 7, after=_saved(six))
    assert _saved(logs / "epoch_007.pt") > first_seven
    _push(logs)
    assert _drive_epochs(drive) == {5, 6, 7}
    assert _on_drive(drive)["epoch_007.pt"][0] != seven_id
    assert prune(f"drive:{FOLDER}", _policy()).to_delete == []
    assert _status() == "epoch_007.pt"


def test_sent_back_and_then_back_to_the_line_left(drive, tmp_path):
    """Sent back to 5, then the user returns to the 10 it left (logs still holds it): that
    line is where the run goes on again, so keep_last 3 keeps 8, 9, 10 (sent back up), not
    the first branch's 3-5."""
    from drivestage.pruning import prune

    logs = tmp_path / "logs"
    made = _ten(logs, drive)
    assert _record(logs, _decide(logs, str(made[5])), policy=_policy()) == "epoch_005.pt"
    assert _drive_epochs(drive) == {3, 4, 5}
    assert _record(logs, _decide(logs, str(made[10])), policy=_policy()) == "epoch_010.pt"
    assert _drive_epochs(drive) == {8, 9, 10}
    assert prune(f"drive:{FOLDER}", _policy()).to_delete == []
    assert _status() == "epoch_010.pt"


def test_a_run_never_sent_back_is_ranked_as_before_whatever_the_clocks(drive, tmp_path):
    """No record, no branch: this folder's epochs 1-5 were saved by a clock an hour ahead
    (later than Drive's 6-8 from another machine), and a push of it keeps Drive's newest
    three by epoch, as before (save times alone never make a line "left behind")."""
    logs, other = tmp_path / "logs", tmp_path / "other"
    _line(logs, [1, 2, 3, 4, 5], start=time.time() + HOUR)
    for path in _line(other, [6, 7, 8]).values():
        _put(drive, path)
    result = _push(logs)
    assert {6, 7, 8} <= _drive_epochs(drive)
    assert not {d.name for d in result.pruned} & {"epoch_006.pt", "epoch_007.pt", "epoch_008.pt"}


# --------------------------------------------------------------------------- verified first

def test_the_line_left_stays_while_the_record_is_refused(drive, tmp_path, monkeypatch):
    """Drive answers every write 503: the record's push fails, and nothing of the line left
    behind was deleted (its replacement, the record, is not verified there)."""
    from _proxy import Proxy, Reply
    from drivestage.errors import MirrorError

    logs = tmp_path / "logs"
    made = _ten(logs, drive)
    before = _on_drive(drive)
    with Proxy(drive.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            proxy.on(method, r".", lambda *a: Reply(503, {"Content-Type": "application/json"},
                     [b'{"error": {"code": 503, "message": "backend error"}}']), forward=False)
        with pytest.raises(MirrorError, match="nothing was trained"):
            _record(logs, _decide(logs, str(made[5])), policy=_policy())
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", drive.url)
    assert _on_drive(drive) == before


def test_room_is_never_made_from_the_line_left_before_the_record_is_there(drive, tmp_path):
    """The plan of the record's push deletes 8-10 (left behind), but a push short of Drive
    space prunes before it uploads: while the record is only here, none of them is among
    what may go first."""
    from drivestage import pruning
    from drivestage.state import Md5Cache

    logs = tmp_path / "logs"
    made = _ten(logs, drive)
    assert _record(logs, _decide(logs, str(made[5])), drive=False) == "epoch_005.pt"
    folder = _folder(logs, _policy())
    store, path = folder._store, folder._path
    listing: dict = {}
    for e in store.list(store.resolve(path)):
        listing.setdefault(e.name, []).append(e)
    local = {n: pruning.LocalFile(str(logs / n), os.path.getsize(logs / n))
             for n in os.listdir(logs) if n.startswith("epoch_")}
    view = pruning.view(store, listing, local, _policy(), Md5Cache())
    plan = pruning.plan_folder(view, _policy())
    assert {d.name for d in plan.to_delete if d.id} >= {"epoch_008.pt", "epoch_009.pt"}
    assert pruning.pre_prune_victims(plan, view, _policy()) == []


# --------------------------------------------------------------------------- SIGKILL

_PUSH_CHILD = """
import sys
from trainer.drive import DriveFolder, retention_policy
DriveFolder(sys.argv[1], sys.argv[2], retention_policy(3, 0, None)).push()
"""


@pytest.mark.parametrize("moment", ["upload", "delete"])
def test_a_kill_in_the_records_push_then_the_same_again(drive, drive_env, tmp_path, moment):
    """The record's push (the writer's, in a child) is SIGKILLed in its first upload, or in
    its first deletion. Killed before the record is verified on Drive, nothing of the line
    left is deleted; killed while it prunes, what is left of it ranks as left behind on
    Drive too (prune keeps 3-5). Run again, Drive ends with 3, 4, 5."""
    from _cli import child_env
    from _kill import sigkill_when
    from drivestage.pruning import prune

    logs = tmp_path / "logs"
    made = _ten(logs, drive)
    assert _record(logs, _decide(logs, str(made[5])), drive=False) == "epoch_005.pt"
    drive.clear_requests()
    method = {"upload": "POST", "delete": "DELETE"}[moment]
    drive.faults.latency(0.5, method=method, path=r"^/upload/" if moment == "upload" else None,
                         times=1)
    proc = subprocess.Popen([sys.executable, "-c", _PUSH_CHILD, f"drive:{FOLDER}", str(logs)],
                            env=child_env(drive), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    sigkill_when(proc, lambda: any(r.method == method and (moment == "delete" or
                                                           r.path.startswith("/upload/"))
                                   for r in drive.requests), f"the push never sent a {method}")
    drive.faults.clear()
    there = _drive_epochs(drive, paired=False)
    if moment == "upload":
        assert {8, 9, 10} <= there
    else:
        assert {3, 4, 5} <= there
        prune(f"drive:{FOLDER}", _policy())
        assert _drive_epochs(drive) == {3, 4, 5}
    _push(logs)
    assert _drive_epochs(drive) == {3, 4, 5}
    assert _status() == "epoch_005.pt"


def test_the_sidecar_left_of_the_last_checkpoint_left_behind_is_retired(drive, tmp_path):
    """A prune killed between epoch_010.pt's deletion and its sidecar's, 8 and 9 already
    gone: no checkpoint of the line left is further on than the orphan epoch_010.json, yet
    the record at 5 left it behind, so the next prune retires it at once (not a day on)."""
    from drivestage.pruning import prune
    from drivestage.retention import format_plan

    logs = tmp_path / "logs"
    made = _ten(logs, drive)
    assert _record(logs, _decide(logs, str(made[5])), policy=_policy()) == "epoch_005.pt"
    drive.add_file(f"{FOLDER}/epoch_010.json", ckpt.sidecar_path(made[10]))
    plan = prune(f"drive:{FOLDER}", _policy())
    assert [d.name for d in plan.to_delete] == ["epoch_010.json"]
    assert "where it went back to" in format_plan(plan)
    assert _drive_epochs(drive) == {3, 4, 5}


# --------------------------------------------------------------------------- clocks

@pytest.mark.parametrize("offset", [-HOUR, HOUR])
def test_a_second_machine_with_another_clock_goes_on_with_the_branch(drive, tmp_path,
                                                                     monkeypatch, offset):
    """Machine A records the branch at 5 and saves 6; machine B, its clock an hour behind
    (or ahead), resumes from Drive and saves 7 as the trainer dates it (never before a save
    of the run it saw). B's push keeps 5, 6, 7: its 7 is not read as left behind by A's
    record, and the diverged 8-10 stay gone."""
    from test_attack18_resume import _skewed
    from trainer.resume import saved_before
    from trainer.writer import BackgroundWriter

    logs, b = tmp_path / "logs", tmp_path / "b"
    made = _ten(logs, drive)
    assert _record(logs, _decide(logs, str(made[5])), policy=_policy()) == "epoch_005.pt"
    _save(logs, 6, after=_saved(made[5]))
    _push(logs)
    import drivestage.emulator.server as server  # noqa: F401 (its clock stays right)

    _skewed(monkeypatch, offset)
    start = _decide(b)
    assert os.path.basename(start.path) == "epoch_006.pt"
    writer = BackgroundWriter(str(b), None)
    try:
        writer.not_before(saved_before(str(b), "r1", start))
        _save(b, 7, writer=writer)
    finally:
        writer.close(push=False)
    _push(b)
    assert _drive_epochs(drive) == {5, 6, 7}
    assert _status() == "epoch_007.pt"


# --------------------------------------------------------------------------- lineage, pure

def test_lineage_records_in_force():
    """Pure cases: one record; two along one line (both hold); back to the line left (only
    the later holds); sent back to the same state again (its first save time kept)."""
    from drivestage.lineage import Point, left_behind

    def pts(*specs):
        return [Point(f"e{e}{tag}", "r", (e, 0), saved, branch)
                for e, tag, saved, branch in specs]

    line = [(e, "a", float(e), None) for e in range(6, 11)]
    # One record at 5 (first saved at 5, dated 20).
    assert set(left_behind(pts((5, "", 20.0, 5.0), *line))) == {f"e{e}a" for e in range(6, 11)}
    # The branch saved 6 (21) and 7 (22), then went back to its own 6 (dated 30).
    two = pts((5, "", 20.0, 5.0), (6, "b", 30.0, 21.0), (7, "b", 22.0, None),
              *[(e, "a", float(e), None) for e in (8, 9, 10)])
    assert set(left_behind(two)) == {"e7b", "e8a", "e9a", "e10a"}
    # Back to the 10 it left (first saved at 10, dated 30): 6-9 are its line again.
    back = pts((5, "", 20.0, 5.0), (10, "a", 30.0, 10.0),
               *[(e, "a", float(e), None) for e in range(6, 10)])
    assert left_behind(back) == {}
    # No record: save times alone leave nothing behind.
    assert left_behind(pts((5, "", 20.0, None), *line)) == {}


def _cands(specs):
    """Candidates of run r: (name, epoch, steps into the next, saved, branch)."""
    from drivestage.retention import Candidate

    return [Candidate(name, 100, saved, {}, epoch, None, True, "r", saved, into, branch)
            for name, epoch, into, saved, branch in specs]


def test_the_plan_ranks_autosaves_and_the_budget_the_same_way():
    """Pure plan: the diverged line's autosave (iteration 950, epoch 9) goes once the
    branch has a verified autosave of its own (before, it stayed as the "newest" by number
    until the branch passed iteration 950), and a budget deletes the line left first."""
    from drivestage.retention import RetentionPolicy, plan

    files = _cands([("epoch_005.pt", 5, 0, 20.0, 5.0),
                    *[(f"epoch_{e:03d}.pt", e, 0, float(e), None) for e in (3, 4, 8, 9, 10)],
                    ("autosave_00000950.pt", 9, 50, 9.5, None),
                    ("autosave_00000560.pt", 5, 60, 21.0, None)])
    kept = {d.name for d in plan(files, RetentionPolicy(keep_last=3)) if d.keep}
    assert kept == {"epoch_003.pt", "epoch_004.pt", "epoch_005.pt", "autosave_00000560.pt"}
    budget = plan(files, RetentionPolicy(max_bytes=500))
    assert {d.name for d in budget.to_delete} == {"epoch_008.pt", "epoch_009.pt",
                                                  "autosave_00000950.pt"}


@pytest.mark.slow
def test_a_real_run_sent_back_keeps_its_own_line_on_drive(drive, tiny_config, tmp_path,
                                                          one_torch_thread):
    """fit trains epochs 1-4 with drive.keep_last 2 (Drive: 3, 4); the user resumes from
    logs/epoch_002.pt and the run stops at its first batch. Drive already holds the line
    it goes on with (1, 2: 1 sent up again), not the diverged 3 (before: 2, 3, 4)."""
    from trainer.callbacks import Callback
    from trainer.config import load_config
    from trainer.engine import fit

    logs = tmp_path / "logs"
    cfg = load_config(tiny_config(**{
        "train.freeze_epochs": 0, "train.epochs": 4, "train.save_period": 1,
        "train.eval_period": 100, "train.mosaic": False, "train.mixup": False,
        "train.batch_size": 12, "model.input_size": 32, "drive.keep_last": 2,
        "train.out_dir": str(logs), "drive.logs": f"drive:{FOLDER}"}))
    fit(cfg, resume="auto")
    assert _drive_epochs(drive) == {3, 4}

    class Stop(Callback):
        def on_train_batch_start(self, run, pos):
            raise RuntimeError("disconnected")

    with pytest.raises(RuntimeError, match="disconnected"):
        fit(cfg, resume=str(logs / "epoch_002.pt"), callbacks=[Stop()])
    # (4 stays as the best by map50, drive.keep_best 1: the best keeps its rule; 3 goes.)
    assert _drive_epochs(drive) == {1, 2, 4}
    assert _status() == "epoch_002.pt"
