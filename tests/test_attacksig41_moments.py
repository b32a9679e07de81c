"""``drivestage pull -x`` stopped by SIGTERM / SIGHUP at moments the first tests of it
(test_leftovers41_pull_signals) did not reach: while it waits for DEST's merge lock (another
extraction merges), two signals in a row mid-extraction (``timeout -s TERM`` then a
supervisor's own), and a hang-up ``nohup`` ignores. Each ends as a Ctrl-C does (or not at
all, under ``nohup``), and a rerun ends with the exact tree and nothing else in DEST."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

import drivestage
from drivestage.extract import tempdir

from _archives import a_zip, tree
from _child_waits import ended, repeated, until
from _cli import child_env, run
from _forkcli import PIPE, cli_server
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

KiB = 1024


def _child(emulator, dest, *args: str, script=None):
    return cli_server().popen(["pull", "drive:d/set.zip", str(dest), "-x", "-q", *args],
                              env=child_env(emulator), stdout=PIPE, stderr=PIPE,
                              script=script)


def _extracting(dest) -> bool:
    return dest.exists() and any(len(list(p.glob("ds/*"))) >= 1
                                 for p in dest.glob(tempdir.TEMP_PREFIX + "*"))


def _rerun_is_exact(dest, blob: bytes, members: dict) -> dict:
    rc, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q", "--json")
    assert (rc, err) == (0, "")
    assert tree(dest) == {"set.zip": blob, **members}
    left = sorted(p.name for p in dest.iterdir()
                  if p.name not in ("set.zip", "ds", ".drivestage"))
    assert left == []
    return json.loads(out)


def _waits_to_merge(pid: int, dest) -> bool:
    """Whether ``pid`` has DEST's merge lock file open (it waits for it: this test holds it)."""
    from drivestage.extract import MERGE_LOCK

    lock = os.path.realpath(dest / MERGE_LOCK)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == lock:
                return True
        except OSError:
            continue
    return False


@pytest.mark.parametrize("sig,code,line", [(signal.SIGTERM, 143, "Interrupted by SIGTERM."),
                                           (signal.SIGHUP, 129, "Interrupted by SIGHUP.")])
def test_a_signal_while_waiting_for_the_merge_lock(emulator, local_state, drive_env, tmp_path,
                                                   sig, code, line):
    """Another extraction holds DEST's merge lock: the pull, its archive verified and every
    member in its temporary folder, waits in tries a slice apart; the signal ends the wait."""
    import fcntl

    from drivestage.extract import MERGE_LOCK

    members = {f"ds/p{i}.bin": os.urandom(16 * KiB) for i in range(8)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    os.makedirs(dest / ".drivestage")
    lock = os.open(dest / MERGE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = _child(emulator, dest)
        until(proc, lambda: _waits_to_merge(proc.pid, dest), "it never waited to merge")
        proc.send_signal(sig)
        got, err = ended(proc)
    finally:
        os.close(lock)
    assert (got, err) == (code, line + "\n")
    assert (dest / "set.zip").read_bytes() == blob   # verified and in place: kept
    assert sorted(p.name for p in dest.iterdir()) == [".drivestage", "set.zip"]
    emulator.clear_requests()
    summary = _rerun_is_exact(dest, blob, members)
    assert (summary["action"], summary["fetched"]) == ("extract", 0)


@pytest.mark.parametrize("sig,code,line", [(signal.SIGTERM, 143, "Interrupted by SIGTERM."),
                                           (signal.SIGHUP, 129, "Interrupted by SIGHUP.")])
def test_signals_in_a_row_mid_extraction(emulator, local_state, drive_env, tmp_path,
                                         sig, code, line):
    """More land while the first's clean-up (streams stopped, workers joined, the temporary
    folder removed) runs, a millisecond apart until the process ends (a supervisor that
    repeats its stop): it ends as on the first, nothing half removed."""
    members = {f"ds/p{i:02d}.bin": os.urandom(32 * KiB) for i in range(48)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    emulator.faults.throttle(256 << 10)
    # The answer with the zip's middle byte waits until the pull has ended: it is mid-
    # extraction when the signals come, however late this process sends them (under load the
    # throttled pull had ended, exit 0, before the first one). (The emulator's stop lets go
    # of a hold a failed test left.)
    middle = emulator.faults.hold(emulator.find("d/set.zip")["id"], len(blob) // 2)
    proc = _child(emulator, dest)
    until(proc, lambda: _extracting(dest), "it never extracted")
    repeated(proc, sig)
    got, err = ended(proc)
    middle.release()
    assert (got, err) == (code, line + "\n")
    assert [p.name for p in dest.iterdir() if p.name.startswith(tempdir.TEMP_PREFIX)] == []
    emulator.faults.throttle(None)
    summary = _rerun_is_exact(dest, blob, members)
    assert summary["action"] == "resume" and summary["resumed_from"] > 0, summary


_NOHUP = ("import signal, runpy, sys\n"
          "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
          "sys.argv = ['drivestage', *sys.argv[1:]]\n"
          "runpy.run_module('drivestage', run_name='__main__', alter_sys=True)\n")


def test_a_hang_up_under_nohup_mid_extraction_changes_nothing(emulator, local_state,
                                                              drive_env, tmp_path):
    members = {f"ds/p{i:02d}.bin": os.urandom(32 * KiB) for i in range(24)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    entry = drivestage.connect().resolve("d/set.zip")
    dest = tmp_path / "data"
    hold = emulator.faults.hold(entry.id, len(blob) // 2)
    try:
        proc = _child(emulator, dest, script=_NOHUP)
        until(proc, lambda: _extracting(dest), "it never extracted")
        proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGHUP)
        hold.release()
        got, err = ended(proc)
    finally:
        hold.release()
    assert (got, err) == (0, "")
    assert tree(dest) == {"set.zip": blob, **members}


def test_a_repeat_during_the_clean_up_is_noted_not_raised():
    """In-process: the first signal ends the block; a second, while the clean-up runs (no
    deferred() around it), is noted only, and the block still ends with the first's Stopped."""
    from drivestage.stop_signals import Stopped, as_ctrl_c

    done = []
    with pytest.raises(Stopped) as stopped:
        with as_ctrl_c():
            try:
                signal.raise_signal(signal.SIGTERM)
            finally:
                signal.raise_signal(signal.SIGHUP)   # its handler runs right here
                done.append("cleaned up")
    assert done == ["cleaned up"]
    assert (stopped.value.exit_code, stopped.value.line()) == (143, "Interrupted by SIGTERM.")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL   # put back (a guest's)
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL


@pytest.mark.parametrize("stopped", [True, False])
def test_a_program_stopped_ignores_the_signals_as_it_ends(stopped):
    """As the whole process (``program``), once stopped, the signals are ignored from the
    block's end (its line and exit follow); not stopped, they are put back at their default."""
    from drivestage.stop_signals import Stopped, as_ctrl_c

    try:
        if stopped:
            with pytest.raises(Stopped):
                with as_ctrl_c(program=True):
                    signal.raise_signal(signal.SIGHUP)
        else:
            with as_ctrl_c(program=True):
                pass
        want = signal.SIG_IGN if stopped else signal.SIG_DFL
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == (want, want)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def test_a_signal_while_waiting_for_another_pulls_lock(emulator, local_state, drive_env,
                                                      tmp_path):
    """Two pulls of one zip into one DEST: the second waits for the first's lock and is
    stopped there; the first, unaffected, ends with the exact tree, nothing else in DEST."""
    members = {f"ds/p{i}.bin": os.urandom(64 * KiB) for i in range(8)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    entry = drivestage.connect().resolve("d/set.zip")
    dest = tmp_path / "data"
    hold = emulator.faults.hold(entry.id, len(blob) // 2)
    try:
        first = _child(emulator, dest)
        until(first, lambda: _extracting(dest), "the first never extracted")
        second = _child(emulator, dest)
        err2 = b""

        def waiting() -> bool:   # (its one warning line, read as it comes)
            nonlocal err2
            import select
            assert second.stderr is not None
            while select.select([second.stderr], [], [], 0)[0]:
                chunk = os.read(second.stderr.fileno(), 4096)
                if not chunk:
                    break
                err2 += chunk
            return b"waiting for it" in err2
        until(second, waiting, "the second never waited")
        second.send_signal(signal.SIGTERM)
        got, err = ended(second)
        hold.release()
        assert ended(first) == (0, "")
    finally:
        hold.release()
    assert got == 143 and (err2.decode() + err).endswith("\nInterrupted by SIGTERM.\n")
    assert tree(dest) == {"set.zip": blob, **members}
    assert sorted(p.name for p in dest.iterdir()) == [".drivestage", "ds", "set.zip"]


def test_a_folder_pull_with_jobs_stopped_mid_download(emulator, local_state, drive_env,
                                                     tmp_path):
    files = {f"f{i}.bin": os.urandom(256 * KiB) for i in range(8)}
    for name, data in files.items():
        emulator.add_file(f"d/{name}", data)
    dest = tmp_path / "data"
    # f0's answer stops mid-body until the pull has ended (Drive does stall): the pull is
    # mid-download when the signal comes however late it is sent (under load the throttled
    # pull had ended, exit 0, before it), and the stalled worker's connection must be cut.
    hold = emulator.faults.hold(emulator.find("d/f0.bin")["id"], 128 * KiB)
    try:
        proc = cli_server().popen(["pull", "drive:d", str(dest), "-q", "--jobs", "4"],
                                  env=child_env(emulator), stdout=PIPE, stderr=PIPE)
        until(proc, lambda: dest.exists() and any(p.name.endswith(".partial")
                                                   and p.stat().st_size
                                                   for p in dest.rglob("*")), "no partial")
        proc.send_signal(signal.SIGTERM)
        got, err = ended(proc)
    finally:
        hold.release()
    assert (got, err) == (143, "Interrupted by SIGTERM.\n")
    rc, out, err = run("pull", "drive:d", str(dest), "-q", "--json")
    assert (rc, err) == (0, "")
    assert tree(dest) == {f"d/{name}": data for name, data in files.items()}
    assert sorted(p.name for p in (dest / "d").iterdir()) == [".drivestage", *sorted(files)]
    assert os.listdir(dest) == ["d"]


_EARLY_WORKERS = ("import runpy, sys\n"
                  "from drivestage.extract import workers\n"
                  "workers._WORTH = 1   # (every zip big enough for worker processes)\n"
                  "sys.argv = ['drivestage', *sys.argv[1:]]\n"
                  "runpy.run_module('drivestage', run_name='__main__', alter_sys=True)\n")


@pytest.mark.parametrize("sig,code,line", [(signal.SIGTERM, 143, "Interrupted by SIGTERM."),
                                           (signal.SIGHUP, 129, "Interrupted by SIGHUP.")])
def test_a_signal_during_the_tail_fetch_with_early_workers(emulator, local_state, drive_env,
                                                           tmp_path, sig, code, line):
    """The zip's tail (its central directory) is held by the server while the extraction
    workers, started before it, wait: stopped there, the workers end with the pull, no
    temporary folder is left, and the rerun ends with the exact tree."""
    from test_extract_workers import worker_pids

    members = {f"ds/p{i:02d}.bin": os.urandom(16 * KiB) for i in range(40)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    entry = drivestage.connect().resolve("d/set.zip")
    dest = tmp_path / "data"
    hold = emulator.faults.hold(entry.id, len(blob) - 1)
    seen = len(emulator.requests)

    def at_the_tail() -> bool:
        ranged = [r for r in emulator.requests[seen:]
                  if not str(r.headers.get("Range", r.headers.get("range", "bytes=0-")))
                  .startswith("bytes=0-")]
        return bool(ranged) and bool(worker_pids(proc.pid))
    try:
        proc = _child(emulator, dest, "--jobs", "2", script=_EARLY_WORKERS)
        until(proc, at_the_tail, "no tail fetch with workers")
        pid = proc.pid
        proc.send_signal(sig)
        got, err = ended(proc)
    finally:
        hold.release()
    assert (got, err) == (code, line + "\n")
    deadline = time.monotonic() + 30
    while worker_pids(pid):   # (they see their parent gone within a batch's wait)
        assert time.monotonic() < deadline, "the workers outlived the pull"
        time.sleep(0.01)
    assert [p.name for p in dest.iterdir() if p.name.startswith(tempdir.TEMP_PREFIX)] == []
    _rerun_is_exact(dest, blob, members)


_AT_RENAME = ("import os, re, signal, runpy, sys\n"
              "sig, pattern = int(sys.argv[1]), re.compile(sys.argv[2])\n"
              "done = []\n"
              "def hook(event, args):\n"
              "    if event == 'os.rename' and not done and isinstance(args[1], str) \\\n"
              "            and pattern.search(args[1]):\n"
              "        done.append(1)\n"
              "        os.kill(os.getpid(), sig)   # (its handler runs here, in this hook)\n"
              "sys.addaudithook(hook)\n"
              "sys.argv = ['drivestage', *sys.argv[3:]]\n"
              "runpy.run_module('drivestage', run_name='__main__', alter_sys=True)\n")


@pytest.mark.parametrize("moment,pattern", [("the merge", r"(^|/)ds$"),
                                            ("the stamp", r"set\.zip@[0-9a-f]+\.json$")])
@pytest.mark.parametrize("sig,code,line", [(signal.SIGTERM, 143, "Interrupted by SIGTERM."),
                                           (signal.SIGHUP, 129, "Interrupted by SIGHUP.")])
def test_a_signal_at_the_merge_or_the_stamps_write(emulator, local_state, drive_env, tmp_path,
                                                   moment, pattern, sig, code, line):
    """Sent by the pull to itself as it renames the members' folder into DEST or its stamp
    into the state folder (an audit hook): it ends there as stopped, and the rerun downloads
    nothing and ends with the exact tree, nothing else in DEST."""
    members = {f"ds/p{i:02d}.bin": os.urandom(8 * KiB) for i in range(12)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    proc = cli_server().popen([str(int(sig)), pattern, "pull", "drive:d/set.zip", str(dest),
                               "-x", "-q"], env=child_env(emulator), stdout=PIPE,
                              stderr=PIPE, script=_AT_RENAME)
    got, err = ended(proc)
    assert (got, err) == (code, line + "\n")
    assert [p.name for p in dest.iterdir() if p.name.startswith(tempdir.TEMP_PREFIX)] == []
    assert (dest / "set.zip").read_bytes() == blob
    seen = len(emulator.requests)
    summary = _rerun_is_exact(dest, blob, members)
    assert summary["fetched"] == 0
    assert [r for r in emulator.requests[seen:] if r.kind == "media.download"] == []


_BACKGROUND = ("import signal, runpy, sys\n"
               "signal.signal(signal.SIGINT, signal.SIG_IGN)   # (`pull &` in a script)\n"
               "sys.argv = ['drivestage', *sys.argv[1:]]\n"
               "runpy.run_module('drivestage', run_name='__main__', alter_sys=True)\n")


def test_sigterms_in_a_row_in_a_background_job(emulator, local_state, drive_env, tmp_path):
    """A background job of a script (``pull … &``) has SIGINT ignored: there nothing but
    interrupts._holding holds the stop during a clean-up. SIGTERMs a millisecond apart
    mid-extraction end it as the first one does; the rerun ends exact."""
    members = {f"ds/p{i:02d}.bin": os.urandom(32 * KiB) for i in range(48)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    emulator.faults.throttle(256 << 10)
    # (Held at the middle byte until it ended, as test_signals_in_a_row_mid_extraction's.)
    middle = emulator.faults.hold(emulator.find("d/set.zip")["id"], len(blob) // 2)
    proc = _child(emulator, dest, script=_BACKGROUND)
    until(proc, lambda: _extracting(dest), "it never extracted")
    repeated(proc, signal.SIGTERM)
    got, err = ended(proc)
    middle.release()
    assert (got, err) == (143, "Interrupted by SIGTERM.\n")
    assert [p.name for p in dest.iterdir() if p.name.startswith(tempdir.TEMP_PREFIX)] == []
    emulator.faults.throttle(None)
    summary = _rerun_is_exact(dest, blob, members)
    assert summary["action"] == "resume" and summary["resumed_from"] > 0, summary
