"""Commands whose transfers run in worker threads (``--jobs``), stopped by SIGTERM while Drive
holds one transfer: a download's answer held mid-body, an upload's answer not given. A spot
VM's shutdown gives ~30 s: each ends at once, as a Ctrl-C does (exit 143, "Interrupted by
SIGTERM."), nothing under a final name that is not whole, and the rerun ends with the exact
tree. (A folder pull's file thread waited for its streams until the held answer went on:
stall45; the folder pull of plain files is attacksig41's test.)"""
from __future__ import annotations

import os
import signal

import pytest

from _archives import a_tar, a_zip, tree
from _child_waits import ended, until
from _cli import child_env, run
from _forkcli import PIPE, cli_server
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

KiB = 1024
#: Bound on the end after the signal (a spot VM's grace is ~30 s; the held answer is 60 s).
_BOUND = 20.0


def _stopped(proc) -> tuple[int, str]:
    """SIGTERM now; (exit code, stderr) once it ended, within :data:`_BOUND` seconds."""
    proc.send_signal(signal.SIGTERM)
    return ended(proc, _BOUND)


@pytest.mark.parametrize("ext,pack", [(".zip", a_zip), (".tar", a_tar)])
def test_a_folder_pull_of_archives_with_x_stopped_while_one_is_held(emulator, local_state,
                                                                    drive_env, tmp_path,
                                                                    ext, pack):
    """The held archive's file thread waits for its streams (a zip), or for its member list's
    bytes (a tar, read as it arrives): either wait ends at the signal."""
    archives = {f"z{i}{ext}": {f"z{i}/m{j}.bin": os.urandom(64 * KiB) for j in range(4)}
                for i in range(4)}
    blobs = {name: pack(members) for name, members in archives.items()}
    for name, blob in blobs.items():
        emulator.add_file(f"d/{name}", blob)
    dest = tmp_path / "data"
    first = f"z0{ext}"
    held = emulator.faults.hold(emulator.find(f"d/{first}")["id"], len(blobs[first]) // 2)
    try:
        proc = cli_server().popen(["pull", "drive:d", str(dest), "-x", "-q", "--jobs", "4"],
                                  env=child_env(emulator), stdout=PIPE, stderr=PIPE)
        until(proc, held.reached.is_set, f"{first}'s answer never reached the hold")
        got = _stopped(proc)
    finally:
        held.release()
    assert got == (143, "Interrupted by SIGTERM.\n")
    assert not (dest / "d" / first).exists()   # never under its name unverified
    rc, out, err = run("pull", "drive:d", str(dest), "-x", "-q")
    assert (rc, err) == (0, "")
    want = {f"d/{name}": blob for name, blob in blobs.items()}
    for members in archives.values():
        want.update({f"d/{path}": data for path, data in members.items()})
    assert tree(dest) == want
    assert sorted(p.name for p in (dest / "d").iterdir()) == \
        sorted([".drivestage", *blobs, *(n[:-len(ext)] for n in blobs)])


def test_a_push_with_jobs_stopped_while_drive_holds_an_upload_answer(emulator, local_state,
                                                                     drive_env, tmp_path):
    files = {f"f{i}.bin": os.urandom(64 * KiB) for i in range(8)}
    src = tmp_path / "run"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    seen = len(emulator.requests)
    # Every chunk's answer waits (the body is in; the emulator's stop ends the wait).
    emulator.faults.latency(60, path=r"^/upload/.*[?&]upload_id=")
    proc = cli_server().popen(["push", str(src), "drive:runs", "--jobs", "4"],
                              env=child_env(emulator), stdout=PIPE, stderr=PIPE)
    until(proc, lambda: any(r.kind == "media.upload" for r in emulator.requests[seen:]),
           "no upload was sent")
    got = _stopped(proc)
    assert got[0] == 143 and got[1].endswith("Interrupted by SIGTERM.\n"), got
    emulator.faults.clear()
    rc, out, err = run("push", str(src), "drive:runs")
    # (one summary line; the held chunks' files may have landed: "unchanged" then)
    assert rc == 0 and err.startswith(f"push {src} -> drive:runs: ") and \
        err.count("\n") == 1, err
    on_drive = {name: emulator.read_bytes(emulator.find(f"runs/{name}")["id"])
                for name in files}
    assert on_drive == files


def test_a_mirror_with_jobs_stopped_while_drive_holds_an_upload_answer(emulator, local_state,
                                                                       drive_env, tmp_path):
    """Its period's push is held: the SIGTERM's final push (the flush) gets --grace, then the
    mirror names what it did not send and exits 1, within the grace (a spot VM's ~30 s)."""
    files = {f"f{i}.bin": os.urandom(64 * KiB) for i in range(8)}
    src = tmp_path / "run"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    seen = len(emulator.requests)
    emulator.faults.latency(60, path=r"^/upload/.*[?&]upload_id=")
    proc = cli_server().popen(["mirror", str(src), "drive:runs", "--every", "3600",
                               "--grace", "2", "--jobs", "4"],
                              env=child_env(emulator), stdout=PIPE, stderr=PIPE)
    until(proc, lambda: any(r.kind == "media.upload" for r in emulator.requests[seen:]),
           "no upload was sent")
    rc, err = _stopped(proc)
    assert rc == 1, err
    assert err.splitlines()[-2:] == [
        "stopping: pushing once more (for 2s at most, --grace; a second Ctrl-C or SIGTERM "
        "abandons it)...",
        "Error: --grace (2 s) ran out before the final push to drive:runs was done; it had "
        "not begun: the push under way since before the stop had not sent f0.bin, f1.bin, "
        f"f2.bin, f3.bin, f4.bin and 3 more, and what changed in {src} since that push began "
        "is not there either; run the same drivestage mirror command again to send it (a "
        "cut upload resumes)"], err
    emulator.faults.clear()
    rc, out, err = run("push", str(src), "drive:runs")
    assert rc == 0 and err.count("\n") == 1, err
    assert {name: emulator.read_bytes(emulator.find(f"runs/{name}")["id"])
            for name in files} == files
