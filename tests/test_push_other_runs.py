"""``push`` and ``mirror`` never replace another run's checkpoint on Drive unless told to.

Run B's ``last.pt`` (its sidecar names run B and vouches for it) is on Drive; a push of run A's
folder (or of a loop whose sidecars name no run) holding ``last.pt`` too must leave B's copy
and its sidecar byte for byte, push everything else, and end with exit 1 and one line naming
the Drive file, the other run and what to do. ``--force`` replaces it as before. A file on
Drive without a sidecar, or whose sidecar names no run or vouches for no copy, is replaced as
before. ``prune --max-bytes`` that cannot hold what the policy keeps exits 1 as ``push`` does.

Through the real stack against the emulator: what is asserted is the exact set of files on
Drive (name -> md5s), the bytes of the other run's checkpoint, the exit code and the line."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from click.testing import CliRunner

from _checkpoints import md5, save, sidecar_json
from _cli import run
from _drive_state import live_md5s
from drivestage.cli import cli

FOLDER = "Models/logs"
DEST = f"drive:{FOLDER}"
MINE, THEIRS = "run-A", "run-B"
T0 = time.time() - 3600
FIX = "push into another folder, or add --force to replace it"


@pytest.fixture(autouse=True)
def _fast(fast_retries, drive_env, local_state):
    """Backoffs of a millisecond; the emulator as Drive."""


def _on_drive(emu, stem: str, epoch: int, run_id=THEIRS, side_name: str = "") -> tuple[dict, str]:
    """Run B's checkpoint and its sidecar on Drive; returns them (name -> [md5]) and the
    checkpoint's id."""
    data = os.urandom(3000)
    side = sidecar_json(epoch, data, run_id, T0 + 100)
    fid = emu.add_file(f"{FOLDER}/{stem}.pt", data)
    side_name = side_name or f"{stem}.json"
    emu.add_file(f"{FOLDER}/{side_name}", side)
    return {f"{stem}.pt": [md5(data)], side_name: [md5(side)]}, fid


def _refused(where: str, run_id: str = THEIRS, epoch: int = 5) -> str:
    return (f"Error: {where} is another run's checkpoint (run {run_id}, epoch {epoch}), left as "
            f"it is; the rest was pushed. {FIX[0].upper()}{FIX[1:]}")


def _csv(src, text: str = "epoch\n1\n") -> dict:
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "results.csv"), "w") as fh:
        fh.write(text)
    return {"results.csv": [md5(text.encode())]}


@pytest.mark.parametrize("mine", [MINE, None], ids=["another run", "no run"])
def test_another_runs_checkpoint_stays_the_rest_goes_and_the_push_exits_1(emulator, tmp_path,
                                                                          mine):
    theirs, fid = _on_drive(emulator, "last", 5)
    before = emulator.read_bytes(fid)
    src = str(tmp_path / "a")
    save(src, "last", 4, T0 + 400, run=mine, saved=T0 + 400)
    rest = save(src, "epoch_004", 4, T0 + 400, run=mine, saved=T0 + 400)
    rest.update(_csv(src))
    code, out, err = run("push", src, DEST)
    assert code == 1, err
    assert err.splitlines()[-1] == _refused(f"{DEST}/last.pt")
    assert live_md5s(emulator, FOLDER) == {**theirs, **rest}
    assert emulator.read_bytes(fid) == before


def test_force_replaces_another_runs_checkpoint(emulator, tmp_path):
    _on_drive(emulator, "last", 5)
    src = str(tmp_path / "a")
    mine = save(src, "last", 4, T0 + 400, run=MINE, saved=T0 + 400)
    code, out, err = run("push", src, DEST, "--force")
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == mine
    assert "another run" not in err


def test_several_files_of_other_runs_are_named_in_one_line(emulator, tmp_path):
    theirs = {}
    for i in range(1, 5):
        theirs.update(_on_drive(emulator, f"epoch_00{i}", i, run_id="run-C" if i == 4 else THEIRS)[0])
    src = str(tmp_path / "a")
    for i in range(1, 5):
        save(src, f"epoch_00{i}", i, T0 + 400 + i, run=MINE, saved=T0 + 400 + i)
    code, out, err = run("push", src, DEST)
    assert code == 1, err
    assert err.splitlines()[-1] == (
        f"Error: {DEST}/epoch_001.pt, {DEST}/epoch_002.pt, {DEST}/epoch_003.pt and 1 more are "
        f"another run's checkpoints (runs {THEIRS}, run-C), left as they are; the rest was "
        f"pushed. Push into another folder, or add --force to replace them")
    assert live_md5s(emulator, FOLDER) == theirs


@pytest.mark.parametrize("there", ["no sidecar", "a sidecar without a run",
                                   "a sidecar vouching for no copy"])
def test_a_file_of_no_run_on_drive_is_replaced_as_before(emulator, tmp_path, there):
    """A plain file the user pushed before (no sidecar: ``.pt`` files and others), one whose
    sidecar names no run (CheckpointSync's), or one whose sidecar vouches for other bytes:
    no run's checkpoint, replaced as before. A plain file that is no checkpoint is updated in
    place (its id kept)."""
    data = os.urandom(3000)
    emulator.add_file(f"{FOLDER}/last.pt", data)
    if there == "a sidecar without a run":
        emulator.add_file(f"{FOLDER}/last.json", sidecar_json(5, data, None, T0 + 100))
    elif there == "a sidecar vouching for no copy":
        emulator.add_file(f"{FOLDER}/last.json", sidecar_json(5, b"other", THEIRS, T0 + 100))
    csv_id = emulator.add_file(f"{FOLDER}/results.csv", b"old\n")
    src = str(tmp_path / "a")
    mine = save(src, "last", 4, T0 + 400, run=MINE, saved=T0 + 400)
    if there == "no sidecar":
        os.unlink(os.path.join(src, "last.json"))
        del mine["last.json"]
    mine.update(_csv(src))
    code, out, err = run("push", src, DEST)
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == mine
    assert emulator.find(f"{FOLDER}/results.csv")["id"] == csv_id


def test_a_checkpoint_without_a_local_sidecar_never_removes_another_runs(emulator, tmp_path):
    """A local ``last.pt`` with no sidecar says no run: not refused, and Drive's sidecar
    still vouches for run B's copy, which stays beside the new one (as for any checkpoint
    whose sidecar names the old bytes)."""
    theirs, fid = _on_drive(emulator, "last", 5)
    src = tmp_path / "a"
    src.mkdir()
    (src / "last.pt").write_bytes(b"plain weights")
    code, out, err = run("push", str(src), DEST)
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == {
        "last.pt": sorted(theirs["last.pt"] + [md5(b"plain weights")]),
        "last.json": theirs["last.json"]}


def test_a_sidecar_pushed_without_its_checkpoint_never_replaces_another_runs(emulator,
                                                                             tmp_path):
    """``--exclude '*.pt'`` sends the sidecars alone: run A's ``last.json`` over run B's
    would leave B's ``last.pt`` vouched for by nothing."""
    theirs, _ = _on_drive(emulator, "last", 5)
    src = str(tmp_path / "a")
    save(src, "last", 4, T0 + 400, run=MINE, saved=T0 + 400)
    rest = _csv(src)
    code, out, err = run("push", src, DEST, "--exclude", "*.pt")
    assert code == 1, err
    assert err.splitlines()[-1] == _refused(f"{DEST}/last.pt")
    assert live_md5s(emulator, FOLDER) == {**theirs, **rest}


@pytest.mark.parametrize("forms", ["legacy", "both"])
def test_a_legacy_sidecar_of_another_run_protects_its_checkpoint(emulator, tmp_path, forms):
    """Run B's checkpoint described by drivestage 0.1.0's ``last.pt.json`` (and ``last.json``
    too): run A's ``last.json`` would take over as its sidecar (the current form wins). Named
    once."""
    theirs, fid = _on_drive(emulator, "last", 5, side_name="last.pt.json")
    if forms == "both":
        side = emulator.read_bytes(emulator.find(f"{FOLDER}/last.pt.json")["id"])
        emulator.add_file(f"{FOLDER}/last.json", side)
        theirs["last.json"] = [md5(side)]
    src = str(tmp_path / "a")
    save(src, "last", 4, T0 + 400, run=MINE, saved=T0 + 400)
    code, out, err = run("push", src, DEST)
    assert code == 1, err
    assert err.splitlines()[-1] == _refused(f"{DEST}/last.pt")
    assert live_md5s(emulator, FOLDER) == theirs


def test_another_machines_copy_pushed_meanwhile_is_never_repaired_away(emulator, tmp_path,
                                                                       monkeypatch):
    """Machine B pushes run B's ``last.pt`` and ``last.json`` while this push (run A) sends
    its own (after it listed the folder): both copies of each name stay. The next push from
    here must not take B's copies for duplicates to repair (it deleted them)."""
    src = str(tmp_path / "a")
    mine = save(src, "last", 4, T0 + 400, run=MINE, saved=T0 + 400)
    plan, theirs = emulator.faults.plan, {}

    def other_machine(method, target):
        if method == "POST" and target.startswith("/upload/") and not theirs:
            theirs.update(_on_drive(emulator, "last", 5)[0])
        return plan(method, target)

    monkeypatch.setattr(emulator.faults, "plan", other_machine)
    code, out, err = run("push", src, DEST, "--jobs", "1")
    assert code == 0, err
    both = {n: sorted(mine[n] + theirs[n]) for n in mine}
    assert live_md5s(emulator, FOLDER) == both
    code, out, err = run("push", src, DEST)
    assert code == 1, err
    assert err.splitlines()[-1] == _refused(f"{DEST}/last.pt")
    assert live_md5s(emulator, FOLDER) == both


def test_the_policy_never_prunes_another_runs_checkpoint_under_a_refused_name(emulator,
                                                                              tmp_path):
    """``--keep-last 1`` over run A's epochs 1-3: run A's local ``epoch_001.pt`` is not kept,
    but Drive's ``epoch_001.pt`` is run B's newest verified checkpoint: it stays."""
    theirs, _ = _on_drive(emulator, "epoch_001", 1)
    src = str(tmp_path / "a")
    for i in (1, 2):
        save(src, f"epoch_00{i}", i, T0 + 400 + i, run=MINE, saved=T0 + 400 + i)
    newest = save(src, "epoch_003", 3, T0 + 403, run=MINE, saved=T0 + 403)
    code, out, err = run("push", src, DEST, "--keep-last", "1")
    assert code == 1, err
    assert err.splitlines()[-1] == _refused(f"{DEST}/epoch_001.pt", epoch=1)
    assert live_md5s(emulator, FOLDER) == {**theirs, **newest}


def test_another_run_the_policy_drops_anyway_is_replaced(emulator, tmp_path):
    """``--keep-runs 1`` drops run B (it wrote before run A's epoch_002): leaving its
    ``epoch_001.pt`` would keep nothing the policy keeps, so run A's replaces it and the push
    exits 0. (The plan is made with B's copy as it is on Drive: were ``epoch_001.pt`` run A's
    only file, run B would be the only run the plan sees, kept, and the push would refuse.)"""
    _on_drive(emulator, "epoch_001", 1)
    src = str(tmp_path / "a")
    mine = save(src, "epoch_001", 1, time.time(), run=MINE, saved=time.time())
    mine.update(save(src, "epoch_002", 2, time.time() + 1, run=MINE, saved=time.time()))
    code, out, err = run("push", src, DEST, "--keep-runs", "1")
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == mine
    assert "another run" not in err


def test_a_sidecar_drive_will_not_serve_fails_the_push_before_a_byte(emulator, tmp_path,
                                                                     monkeypatch):
    """Whose checkpoint it is cannot be told: nothing is replaced (and nothing sent)."""
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    theirs, _ = _on_drive(emulator, "last", 5)
    side_id = emulator.find(f"{FOLDER}/last.json")["id"]
    emulator.faults.inject("GET", path=rf"/files/{side_id}\?.*alt=media", status=503,
                           times=None)
    src = str(tmp_path / "a")
    save(src, "last", 4, T0 + 400, run=MINE, saved=T0 + 400)
    _csv(src)
    code, out, err = run("push", src, DEST)
    assert code == 1, err
    assert err.splitlines()[-1].startswith("Error: ")
    assert live_md5s(emulator, FOLDER) == theirs


def test_mirror_goes_on_after_a_refusal_and_its_final_push_exits_1(emulator, tmp_path):
    """Each period pushes the rest and logs the refusal once (no spinning between periods);
    the final push's refusal ends the command with exit 1 and the one line."""
    theirs, _ = _on_drive(emulator, "last", 5)
    src = tmp_path / "a"
    save(str(src), "last", 4, T0 + 400, run=MINE, saved=T0 + 400)
    _csv(str(src))
    failed, periods = [], []

    def adversary():
        try:
            deadline = time.monotonic() + 30
            while "results.csv" not in live_md5s(emulator, FOLDER):
                assert time.monotonic() < deadline, "the first period never pushed"
                time.sleep(0.01)
            periods.append(time.monotonic())
            (src / "later.csv").write_text("a later period\n")
            while "later.csv" not in live_md5s(emulator, FOLDER):
                assert time.monotonic() < deadline, "no later period pushed"
                time.sleep(0.01)
            periods.append(time.monotonic())
        except BaseException as exc:
            failed.append(exc)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=adversary)
    thread.start()
    result = CliRunner().invoke(cli, ["mirror", str(src), DEST, "--every", "0.2"])
    thread.join()
    assert not failed, failed
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[-1] == (f"Error: mirror of {src} to {DEST} failed: "
                         + _refused(f"{DEST}/last.pt")[len("Error: "):])
    retried = [line for line in lines if "failed (will try again)" in line]
    assert retried and all(_refused(f"{DEST}/last.pt")[len("Error: "):] in line
                           for line in retried)
    # One a period (every 0.2 s), never a loop without a pause.
    assert len(retried) <= (periods[-1] - periods[0]) / 0.2 + 3, retried
    assert {n: live_md5s(emulator, FOLDER)[n] for n in theirs} == theirs
    assert "later.csv" in live_md5s(emulator, FOLDER)


# --------------------------------------------------------------------------- prune's budget

@pytest.mark.parametrize("dry", [False, True], ids=["prune", "dry run"])
def test_prune_whose_budget_cannot_hold_what_the_policy_keeps_exits_1(emulator, tmp_path, dry):
    """As ``push``: one line saying how far over and what to do; nothing deleted for the
    budget (the newest and a protected checkpoint are what it cannot delete)."""
    for i in (1, 2):
        emulator.add_file(f"{FOLDER}/epoch_00{i}.pt", os.urandom(2000))
    before = live_md5s(emulator, FOLDER)
    code, out, err = run("prune", DEST, "--keep-last", "2", "--max-bytes", "3KB",
                         "--protect", "epoch_001.pt", *(["--dry-run"] if dry else []))
    assert code == 1, err
    assert err.splitlines()[-1] == (
        f"Error: the retention budget of 2.9 KiB cannot hold what the policy keeps (3.9 KiB) "
        f"in {DEST}, 1000 B over. What no budget deletes (epoch_001.pt, epoch_002.pt) takes "
        "3.9 KiB alone, so nothing was deleted for it (a budget short even then is taken for "
        "a slip); raise --max-bytes to 3.9 KiB or more (the oldest checkpoints then go as far "
        "as it needs), or keep fewer checkpoints")
    assert "cannot hold" in out  # the plan's table says so too
    assert live_md5s(emulator, FOLDER) == before


def test_prune_within_its_budget_exits_0(emulator, tmp_path):
    for i in (1, 2, 3):
        emulator.add_file(f"{FOLDER}/epoch_00{i}.pt", os.urandom(2000))
    code, out, err = run("prune", DEST, "--max-bytes", "4100B")
    assert code == 0, err
    assert sorted(live_md5s(emulator, FOLDER)) == ["epoch_002.pt", "epoch_003.pt"]
