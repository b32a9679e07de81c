"""orphanpt27: a lone autosave on Drive, ``autosave_<n>.pt`` without its sidecar.

Every save of an autosave sends two files: the checkpoint, then its sidecar. A process
SIGKILLed between the two on a machine whose disk is gone afterwards (Colab's usual end)
left the checkpoint on Drive alone: it names no run (no sidecar), so retention kept it as
the newest autosave of "no run", for good: a checkpoint's size (70 MB for YOLOv4-tiny) of the
quota per unlucky kill. ``--resume auto`` never takes it (Drive's checkpoints count only with
a sidecar that vouches for them), so nothing used it. (The idea of retiring such a file:
attacktrain26's, last session; :mod:`drivestage.lone_autosaves`.)

Retention now retires such an autosave once a verified autosave numbered above it reached
Drive after it, Drive has held it a day (:data:`drivestage.orphans.MIN_AGE`), every run that
saved verified autosaves before it has saved one above it since, and a second listing just
before the deletion still shows it alone. Everything else stays as before.

Through the real stack against the emulator: a real ``drivestage push`` SIGKILLed between the
two uploads, the trainer's own push (:class:`trainer.drive.DriveFolder`), the CLI in-process.
No sleeps: Drive's arrival times are moved back in the emulator (as the orphans' tests do)."""
from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from _checkpoints import RUN, save
from _cli import ok, run
from _drive_state import held_since, live_md5s
from _kill import sigkill_when
from _proxy import Proxy
from _forkcli import cli_server
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

FOLDER = "Models/logs"
SPEC = f"drive:{FOLDER}"
T0 = 1764600000.0
DAY = 24 * 3600
OTHER_RUN = "20261130-101010-aaaa"


def _name(n: int) -> str:
    return f"autosave_{n:08d}"


def _live(emu) -> dict:
    return live_md5s(emu, FOLDER)


def _id(emu, name: str) -> str:
    return emu.find(f"{FOLDER}/{name}")["id"]


def _arrived(emu, name: str, ago: float) -> None:
    """Drive received ``name`` ``ago`` seconds ago (createdDate and modifiedDate, as Drive
    stamps them on arrival)."""
    when = time.time() - ago
    held_since(emu, _id(emu, name), when)


def _row(out: str, name: str) -> tuple[str, str]:
    """The action and the reason of ``name``'s line of the plan's table."""
    rows = [line for line in out.splitlines() if f"  {name}  " in line]
    assert len(rows) == 1, out
    return rows[0].split()[0], rows[0].split(f"  {name}  ", 1)[1].strip()


def _pair(src, n: int, run_id: str = RUN) -> dict:
    """The trainer's autosave ``n`` (checkpoint and sidecar) in ``src``; name -> [md5]."""
    return save(str(src), _name(n), 0, T0 + n, run=run_id, saved=T0 + n)


def _lone(emulator, tmp_path, n: int, run_id: str = RUN) -> list:
    """Autosave ``n``'s checkpoint on Drive without its sidecar, as a push killed between the
    two uploads leaves it (the store's own upload of the one file). Returns its md5s."""
    src = tmp_path / f"cut{n}"
    files = _pair(src, n, run_id)
    os.unlink(src / f"{_name(n)}.json")
    ok("push", str(src), SPEC)
    return files[f"{_name(n)}.pt"]


def _push(tmp_path, *ns: int, run_id: str = RUN, options=("--keep-last", "1")) -> dict:
    """A push of autosaves ``ns`` (with their sidecars) from a folder of their own."""
    src = tmp_path / ("m" + "_".join(map(str, ns)) + run_id[-4:])
    files: dict = {}
    for n in ns:
        files.update(_pair(src, n, run_id))
    ok("push", str(src), SPEC, *options)
    return files


def _kill_between_the_two_uploads(emulator, src, n: int) -> None:
    """``drivestage push SRC`` in a child, SIGKILLed once autosave ``n``'s checkpoint is on
    Drive and the upload of its sidecar began (that request never reaches Drive)."""
    held, release = threading.Event(), threading.Event()
    title = f"{_name(n)}.json".encode()

    def hold(body: bytes) -> bytes:
        if title in body:
            held.set()
            release.wait(30)
            raise ConnectionAbortedError("the pushing process was killed")
        return body

    with Proxy(emulator.url) as proxy:
        proxy.mangle("POST", r"^/upload/", hold)
        env = dict(os.environ, DRIVESTAGE_API_ROOT=proxy.url, DRIVESTAGE_TOKEN="test-token")
        proc = cli_server().popen(["push", str(src), SPEC,
                                   "--keep-last", "3", "--jobs", "1"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            sigkill_when(proc, held.is_set, "the push never began the sidecar's upload")
        finally:
            release.set()


# --------------------------------------------------------------------------- the defect

def test_a_push_killed_between_an_autosaves_two_uploads_leaves_nothing_on_drive_for_good(
        emulator, drive_env, local_state, tmp_path):
    """Machine 1 pushes autosave 1, then is killed while autosave 2's sidecar is on its way;
    its disk is gone. Machine 2 resumes from Drive (autosave 1: the lone autosave 2 is no
    checkpoint to it), saves autosaves 3, 4 and 5 with the trainer's push. Before: Drive
    kept autosave_00000002.pt for good beside the newest autosave. Now, once Drive has held it
    a day, the next push retires it and says so."""
    from trainer.drive import DriveFolder, retention_policy

    m1 = tmp_path / "m1"
    _pair(m1, 1)
    ok("push", str(m1), SPEC, "--keep-last", "3")
    lone = _pair(m1, 2)[f"{_name(2)}.pt"]
    _kill_between_the_two_uploads(emulator, m1, 2)
    assert sorted(_live(emulator)) == [f"{_name(1)}.json", f"{_name(1)}.pt", f"{_name(2)}.pt"]
    assert _live(emulator)[f"{_name(2)}.pt"] == lone

    m2 = tmp_path / "m2"                        # a fresh machine: machine 1's disk is gone
    drive = DriveFolder(SPEC, str(m2), retention_policy(3, 1, None))
    assert [c.name for c in drive.checkpoints()] == [f"{_name(1)}.pt"]   # what a resume takes
    for n in (3, 4):
        _pair(m2, n)
    drive.push()
    _arrived(emulator, f"{_name(2)}.pt", DAY + 3600)
    for n in (3, 4):
        for x in ("pt", "json"):
            os.unlink(m2 / f"{_name(n)}.{x}")
    newest = _pair(m2, 5)
    result = drive.push()
    assert _live(emulator) == newest
    assert [d.name for d in result.pruned if d.orphan_md5 is not None] == [f"{_name(2)}.pt"]


def _superseded(emulator, tmp_path, *, ago: float = DAY + 3600) -> tuple[list, dict]:
    """Drive holds the lone autosave 2 (arrived ``ago`` seconds ago) and the verified
    autosave 3, which arrived after it. Returns their md5s."""
    lone = _lone(emulator, tmp_path, 2)
    newer = _push(tmp_path, 3)
    _arrived(emulator, f"{_name(2)}.pt", ago)
    return lone, newer


LONE = f"{_name(2)}.pt"
RETIRED = (f"lone autosave: no sidecar on the store, {_name(3)}.pt is further on and verified, "
           "and this file reached the store 25 h ago")
WAITS = ("autosave without a sidecar on the store: retired once the store has held it 24 h "
         "(its sidecar may be on its way)")


def test_prune_dry_run_says_it_would_retire_it_and_prune_does(emulator, drive_env, local_state,
                                                              tmp_path):
    """The table names the file and why; --dry-run deletes nothing; prune then makes one
    more listing (the re-check just before the deletion) and one deletion for it."""
    lone, newer = _superseded(emulator, tmp_path)
    code, out, err = run("prune", SPEC, "--keep-last", "1", "--dry-run")
    assert code == 0, err
    assert _row(out, LONE) == ("delete", RETIRED)
    assert out.splitlines()[-1] == "1 to delete (2.9 KiB), 2 kept", out
    assert "Dry run: nothing was deleted." in err
    assert _live(emulator) == {LONE: lone, **newer}
    emulator.clear_requests()
    ok("prune", SPEC, "--keep-last", "1", "--dry-run")
    before = [r.kind for r in emulator.requests]
    emulator.clear_requests()
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, LONE) == ("delete", RETIRED)
    assert _live(emulator) == newer
    kinds = [r.kind for r in emulator.requests]
    # One more listing than the plan alone (the re-check), and one deletion (in the batch
    # that first reads what the plan keeps).
    assert kinds[:len(before)] == before and kinds.count("files.list") == \
        before.count("files.list") + 1 and kinds.count("files.delete") == 1, (before, kinds)


def test_a_push_names_the_lone_autosave_it_retired(emulator, drive_env, local_state, tmp_path):
    _superseded(emulator, tmp_path)
    src = tmp_path / "next"
    newest = _pair(src, 4)
    code, out, err = run("push", str(src), SPEC, "--keep-last", "1")
    assert code == 0, err
    # (autosave 3 and its sidecar, older than autosave 4; and the lone autosave 2)
    assert "3 pruned (1 lone autosave retired: autosave_00000002.pt)" in out + err, out + err
    assert _live(emulator) == newest


def test_one_that_arrived_less_than_a_day_ago_waits_and_says_why(emulator, drive_env,
                                                                 local_state, tmp_path):
    """Its sidecar may still be on its way (another machine's push, a slow link): kept, and
    the table says until when; a day on, it goes."""
    lone, newer = _superseded(emulator, tmp_path, ago=DAY - 600)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, LONE) == ("keep", WAITS)
    assert _live(emulator) == {LONE: lone, **newer}
    _arrived(emulator, LONE, DAY + 3600)
    ok("prune", SPEC, "--keep-last", "1")
    assert _live(emulator) == newer


def test_an_old_mtime_set_by_its_uploader_does_not_age_one_that_just_arrived(
        emulator, drive_env, local_state, tmp_path):
    """The uploader kept the file's mtime (a year ago), Drive received it now (createdDate):
    this machine's clock against Drive's arrival, not the uploader's word."""
    import datetime

    lone, newer = _superseded(emulator, tmp_path, ago=600)
    iso = datetime.datetime.fromtimestamp(T0 - 365 * DAY, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")
    emulator.store.update_meta(_id(emulator, LONE), {"modifiedDate": iso}, set_modified=True)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, LONE)[0] == "keep"
    assert _live(emulator) == {LONE: lone, **newer}


def test_a_clock_behind_drives_keeps_it(emulator, drive_env, local_state, tmp_path):
    """Drive stamps arrivals two hours ahead of this machine's clock: the lone autosave is
    "minus two hours" old, autosave 3 came a minute after it."""
    lone, newer = _superseded(emulator, tmp_path, ago=-2 * 3600)
    for name in newer:
        _arrived(emulator, name, -2 * 3600 - 60)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, LONE) == ("keep", WAITS)
    assert _live(emulator) == {LONE: lone, **newer}


def test_with_no_verified_autosave_above_it_it_stays(emulator, drive_env, local_state,
                                                     tmp_path):
    """The lone autosave 5 is further on than anything verified (autosave 3, which arrived
    after it): nothing shows the run went past it; and alone in the folder it stays too."""
    lone = _lone(emulator, tmp_path, 5)
    _arrived(emulator, f"{_name(5)}.pt", 3 * DAY)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, f"{_name(5)}.pt") == ("keep", "autosave (none verified yet)")
    newer = _push(tmp_path, 3)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, f"{_name(5)}.pt")[0] == "keep"
    assert _live(emulator) == {f"{_name(5)}.pt": lone, **newer}


def test_a_verified_autosave_that_arrived_before_it_does_not_supersede_it(
        emulator, drive_env, local_state, tmp_path):
    """Autosave 3 was on Drive before the lone autosave 2 came (a run sent back to an earlier
    iteration, killed in its first push): nothing shows that run went past autosave 2."""
    lone, newer = _superseded(emulator, tmp_path)
    for name in (f"{_name(3)}.pt", f"{_name(3)}.json"):
        _arrived(emulator, name, 2 * DAY)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, LONE)[0] == "keep"
    assert _live(emulator) == {LONE: lone, **newer}


@pytest.mark.parametrize("name", ["epoch_002.pt", "best.pt", "model.pt", "autosave_final.pt",
                                  "autosave_00000002.png", "my_autosave_00000002.pt"])
def test_a_checkpoint_not_named_as_an_autosave_is_never_retired(emulator, drive_env,
                                                                local_state, tmp_path, name):
    """A user's own file without a sidecar (a checkpoint of another tool, a plot), a day old
    beside a verified autosave that arrived after it: left alone."""
    data = b"the user's own bytes" * 100
    emulator.add_file(f"{FOLDER}/{name}", data)
    newer = _push(tmp_path, 3)
    _arrived(emulator, name, 3 * DAY)
    ok("prune", SPEC, "--keep-last", "1")
    assert _live(emulator)[name] and set(_live(emulator)) == {name, *newer}


@pytest.mark.parametrize("option", [LONE, "id"])
def test_one_the_user_protects_stays(emulator, drive_env, local_state, tmp_path, option):
    lone, newer = _superseded(emulator, tmp_path)
    protect = _id(emulator, LONE) if option == "id" else option
    ok("prune", SPEC, "--keep-last", "1", "--protect", protect)
    assert _live(emulator) == {LONE: lone, **newer}


def test_its_sidecar_arriving_under_a_listing_that_lags_keeps_it(emulator, drive_env,
                                                                 local_state, tmp_path):
    """The sidecar arrives at last (a push stalled for a day) and Drive's listing lags one
    answer behind it: the plan retires the autosave, the listing just before the deletion
    shows the sidecar, and both stay."""
    lone, newer = _superseded(emulator, tmp_path)
    side = (tmp_path / "cut2" / f"{_name(2)}.pt").read_bytes()
    from _checkpoints import sidecar_json

    emulator.faults.lag_listing(created=1, titles=r"^autosave_00000002\.json$")
    emulator.add_file(f"{FOLDER}/{_name(2)}.json", sidecar_json(0, side))
    code, out, err = run("prune", SPEC, "--keep-last", "1")
    assert code == 0, err
    assert _row(out, LONE)[0] == "delete"     # the plan, made on the lagging listing
    live = _live(emulator)
    assert live[LONE] == lone and f"{_name(2)}.json" in live
    assert ("kept the lone autosave autosave_00000002.pt: its sidecar arrived or it changed "
            "since the plan") in err, err


@pytest.mark.parametrize("body", [b"", b'{"format": 3, "epoch": 0, "md5": "'])
def test_one_whose_sidecar_was_cut_short_is_no_lone_autosave(emulator, drive_env, local_state,
                                                            tmp_path, body):
    """A sidecar there, empty or cut off (a crash after the save, the file pushed as it
    was): that save did not die between its two uploads, and a resume on the machine that
    made it describes it again (attacktrain26) and sends the sidecar anew. Kept as before;
    a resume from Drive takes the verified autosave 3."""
    from trainer.drive import DriveFolder

    lone, newer = _superseded(emulator, tmp_path)
    emulator.add_file(f"{FOLDER}/{_name(2)}.json", body)
    _arrived(emulator, f"{_name(2)}.json", DAY + 3600)
    ok("prune", SPEC, "--keep-last", "1")
    live = _live(emulator)
    assert live[LONE] == lone and f"{_name(2)}.json" in live
    assert [c.name for c in DriveFolder(SPEC, str(tmp_path / "r")).checkpoints()] == [
        f"{_name(3)}.pt"]


def test_with_two_runs_in_the_folder_it_waits_for_each_run_that_saved_before_it(
        emulator, drive_env, local_state, tmp_path):
    """Run B saved autosave 1 and may be the run killed in autosave 2's push; run A went on
    to autosave 3. Autosave 2 may be B's newest state: it stays until B saved past it too
    (autosave 4), then goes."""
    older = _push(tmp_path, 1, run_id=OTHER_RUN)
    _arrived(emulator, f"{_name(1)}.pt", 3 * DAY)
    _arrived(emulator, f"{_name(1)}.json", 3 * DAY)
    lone, newer = _superseded(emulator, tmp_path)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, LONE)[0] == "keep"
    assert _live(emulator) == {LONE: lone, **older, **newer}
    b4 = _push(tmp_path, 4, run_id=OTHER_RUN)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, LONE) == ("delete", RETIRED.replace(_name(3), _name(4)))
    assert _live(emulator) == {**b4, **newer}


def test_in_a_shared_drive_where_this_account_may_not_delete_it_stays_without_an_error(
        emulator, drive_env, local_state, tmp_path):
    """A Contributor of a shared drive may remove nothing: retiring it failed every push and
    prune with the shared drive's role error, for a file nobody asked to delete."""
    team = emulator.add_shared_drive("Team")
    spec = "drive:shared/Team/logs"
    src = tmp_path / "cut"
    data = _pair(src, 2)
    os.unlink(src / f"{_name(2)}.json")
    ok("push", str(src), spec)
    newer = _pair(tmp_path / "v", 3)
    ok("push", str(tmp_path / "v"), spec)
    when = time.time() - DAY - 3600
    held_since(emulator, emulator.find("logs/" + LONE, drive_id=team)["id"], when)
    emulator.set_drive_role(team, "writer")
    code, out, err = run("prune", spec, "--keep-last", "1")
    assert code == 0, err
    assert _row(out, LONE)[0] == "keep"
    live = {f["title"] for f in emulator.files() if not f["labels"]["trashed"]
            and f.get("driveId") == team and f["mimeType"] != "application/vnd.google-apps.folder"}
    assert live == {LONE, *newer}, live
    assert data[LONE]


def test_no_policy_never_retires_one(emulator, drive_env, local_state, tmp_path):
    lone, _ = _superseded(emulator, tmp_path)
    _pair(tmp_path / "next", 4)
    ok("push", str(tmp_path / "next"), SPEC)
    assert _live(emulator)[LONE] == lone


def test_the_machine_that_still_has_it_sends_its_sidecar_and_keeps_it(emulator, drive_env,
                                                                      local_state, tmp_path):
    """Machine 1's disk survived: a resume there described autosave 2 again (attacktrain26)
    and protects it as its start; its push sends the sidecar, and nothing retires the file
    it goes on from."""
    lone, newer = _superseded(emulator, tmp_path)
    src = tmp_path / "cut2"
    _pair(tmp_path / "x", 2)          # (only to have the sidecar bytes for those of cut2)
    from _checkpoints import sidecar_json

    (src / f"{_name(2)}.json").write_bytes(sidecar_json(0, (src / LONE).read_bytes()))
    ok("push", str(src), SPEC, "--keep-last", "1", "--protect", LONE)
    live = _live(emulator)
    assert live[LONE] == lone and f"{_name(2)}.json" in live


def test_on_a_local_folder_no_lone_autosave_is_retired(local_state, tmp_path):
    """A directory has no arrival times, only mtimes, which copy tools set (cp -p, rsync -t
    give a file copied today last year's): there, nothing ages a lone autosave."""
    dest = tmp_path / "dest"
    src = tmp_path / "cut"
    _pair(src, 2)
    os.unlink(src / f"{_name(2)}.json")
    ok("push", str(src), str(dest))
    os.utime(dest / LONE, (time.time() - 3 * DAY,) * 2)
    _pair(tmp_path / "v", 3)
    ok("push", str(tmp_path / "v"), str(dest), "--keep-last", "1")
    ok("prune", str(dest), "--keep-last", "1")
    assert sorted(os.listdir(dest)) == [".drivestage",   # (its run-folder mark: nasmark34)
                                        LONE, f"{_name(3)}.json", f"{_name(3)}.pt"]
