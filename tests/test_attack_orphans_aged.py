"""Orphan sidecars that nothing supersedes: ``X.json`` on Drive without ``X.pt`` for good (an
upload that never completed, another runtime's ``push --delete`` or prune, a process killed
between the two deletions). Retention retires such a sidecar once Drive has held it for
:data:`drivestage.orphans.MIN_AGE`, by Drive's own arrival time (``createdDate``: the v2 API
that drivestage and PyDrive2 use cannot set it; ``modifiedDate`` is what uploaders that keep
mtimes set), and only when the listing of the plan and the one just before the deletion both
show the sidecar without its checkpoint.

No sleeps: the emulator's record of when Drive received the sidecar is moved back (its clock,
as Drive would have stamped it a day ago). Through the real stack (the CLI in-process);
asserted: the files left on Drive (name -> md5s), the plan's lines, the push's summary and the
requests made."""
from __future__ import annotations

import datetime
import time

import pytest

from _checkpoints import RUN, save
from _cli import ok, run
from _drive_state import held_since, live_md5s
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

FOLDER = "Models/logs"
T0 = 1764600000.0
DAY = 24 * 3600


def _live(emu) -> dict:
    return live_md5s(emu, FOLDER)


def _id(emu, name: str) -> str:
    return emu.find(f"{FOLDER}/{name}")["id"]


def _arrived(emu, name: str, ago: float) -> None:
    """Drive received ``name`` ``ago`` seconds ago (its createdDate and modifiedDate, as Drive
    stamps them on arrival)."""
    when = time.time() - ago
    held_since(emu, _id(emu, name), when)


def _set_modified(emu, name: str, when: float) -> None:
    """Drive's modified time of ``name`` set as a client that keeps mtimes sets it."""
    iso = datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    emu.store.update_meta(_id(emu, name), {"modifiedDate": iso}, set_modified=True)


def _row(out: str, name: str) -> tuple[str, str]:
    """The action and the reason of ``name``'s line of the plan's table."""
    rows = [line for line in out.splitlines() if f"  {name}  " in line]
    assert len(rows) == 1, out
    return rows[0].split()[0], rows[0].split(f"  {name}  ", 1)[1].strip()


def _alone(emulator, tmp_path, *, stems=(("epoch_003", 3),), run_id=RUN) -> dict:
    """Checkpoints pushed (no policy), then each one's ``.pt`` deleted on Drive as another
    runtime's push --delete leaves it: the sidecars alone. Returns them as Drive holds them."""
    src = tmp_path / "a"
    for stem, epoch in stems:
        save(str(src), stem, epoch, T0 + epoch, run=run_id)
    ok("push", str(src), f"drive:{FOLDER}")
    for stem, _ in stems:
        emulator.store.delete(_id(emulator, f"{stem}.pt"))
    live = _live(emulator)
    return {f"{stem}.json": live[f"{stem}.json"] for stem, _ in stems}


def test_the_only_sidecar_of_a_run_stays_for_a_day_then_prune_retires_it(
        emulator, drive_env, local_state, tmp_path):
    """Nothing supersedes it (its run's only checkpoint): kept while it may be the first
    half of an upload, retired once Drive has held it a day; the prune says why, and makes
    one more listing, one files.get and one deletion for it."""
    orphan = _alone(emulator, tmp_path)
    _arrived(emulator, "epoch_003.json", DAY - 600)
    emulator.clear_requests()
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _row(out, "epoch_003.json")[0] == "keep"
    assert _live(emulator) == orphan
    before = [r.kind for r in emulator.requests]
    _arrived(emulator, "epoch_003.json", DAY + 3600)
    emulator.clear_requests()
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _row(out, "epoch_003.json") == (
        "delete", "orphan sidecar: epoch_003.pt is not here, and this sidecar reached the "
        "store 25 h ago")
    assert _live(emulator) == {}
    kinds = [r.kind for r in emulator.requests]
    # (and one files.get before the deletion: liar22, never delete on a stale listing)
    assert sorted(kinds) == sorted(before + ["files.list", "files.get", "files.delete"]), \
        (before, kinds)


def test_an_old_mtime_set_by_the_uploader_does_not_age_a_sidecar_that_just_arrived(
        emulator, drive_env, local_state, tmp_path):
    """Machine B's uploader keeps mtimes and sends the small file first: Drive's modifiedDate
    says a year ago, but Drive received it just now (createdDate): it stays."""
    src = tmp_path / "b"
    side = save(str(src), "epoch_003", 3, T0)
    emulator.add_file(f"{FOLDER}/epoch_003.json", (src / "epoch_003.json").read_bytes())
    _set_modified(emulator, "epoch_003.json", T0)
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _row(out, "epoch_003.json")[0] == "keep"
    assert _live(emulator) == {"epoch_003.json": side["epoch_003.json"]}


def test_a_checkpoint_the_plans_listing_did_not_show_yet_keeps_its_sidecar(
        emulator, drive_env, local_state, tmp_path):
    """The checkpoint arrives at last (a day after its sidecar) and Drive's listing lags one
    answer behind it: the plan retires the sidecar, the listing just before the deletion
    shows the checkpoint, and the sidecar stays with it."""
    orphan = _alone(emulator, tmp_path)
    _arrived(emulator, "epoch_003.json", 2 * DAY)
    emulator.faults.lag_listing(created=1, titles=r"^epoch_003\.pt$")
    data = (tmp_path / "a" / "epoch_003.pt").read_bytes()
    emulator.add_file(f"{FOLDER}/epoch_003.pt", data)
    code, out, err = run("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert _row(out, "epoch_003.json")[0] == "delete"   # the plan, made on the lagging listing
    live = _live(emulator)
    assert live["epoch_003.json"] == orphan["epoch_003.json"]
    assert "epoch_003.pt" in live
    assert "kept the orphan sidecar epoch_003.json: its checkpoint came back" in err, err


@pytest.mark.parametrize("options", [
    ("--keep-last", "1", "--protect", "epoch_003.pt"),
    ("--keep-last", "1", "--protect", "epoch_003.json")])
def test_an_old_orphan_the_user_protects_is_kept(emulator, drive_env, local_state, tmp_path,
                                                 options):
    orphan = _alone(emulator, tmp_path)
    _arrived(emulator, "epoch_003.json", 2 * DAY)
    out = ok("prune", f"drive:{FOLDER}", *options)
    assert _row(out, "epoch_003.json")[0] == "keep"
    assert _live(emulator) == orphan


def test_no_policy_never_retires_an_old_orphan(emulator, drive_env, local_state, tmp_path):
    orphan = _alone(emulator, tmp_path)
    _arrived(emulator, "epoch_003.json", 2 * DAY)
    (tmp_path / "a" / "epoch_003.pt").unlink()
    (tmp_path / "a" / "epoch_003.json").unlink()
    ok("push", str(tmp_path / "a"), f"drive:{FOLDER}")
    assert _live(emulator) == orphan


def test_a_push_retires_old_orphans_and_names_them_in_its_summary(emulator, drive_env,
                                                                    local_state, tmp_path):
    """Two runs' orphans a day old (another run's too: its checkpoint is gone, the sidecar
    alone keeps nothing), one fresh; the push sends epoch 5 and says which it retired."""
    _alone(emulator, tmp_path, stems=(("epoch_001", 1),), run_id="20261130-101010-aaaa")
    _alone(emulator, tmp_path / "x", stems=(("epoch_002", 2), ("epoch_003", 3)))
    for name in ("epoch_001.json", "epoch_002.json"):
        _arrived(emulator, name, 2 * DAY)
    fresh = _live(emulator)["epoch_003.json"]
    src = tmp_path / "c"
    new = save(str(src), "epoch_005", 5, T0 + 5)
    code, out, err = run("push", str(src), f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert "2 pruned (2 orphan sidecars retired: epoch_001.json, epoch_002.json)" in out + err, \
        out + err
    assert _live(emulator) == {**new, "epoch_003.json": fresh}
