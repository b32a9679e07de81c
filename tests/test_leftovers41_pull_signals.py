"""``drivestage pull`` stopped by SIGTERM (a spot VM, Colab, ``timeout``, systemd) or SIGHUP (a
closed notebook or terminal) ends as a Ctrl-C does: one line naming the signal, the shell's
exit code for it (143, 129), no temporary extraction folder left in DEST, and the partial
download kept for the rerun, which resumes it. Before, the process died of the signal at once
(-15, -1), its temporary folder left in DEST."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

import drivestage
from drivestage import download as dl
from drivestage.extract import tempdir

from _archives import a_zip, tree
from _cli import child_env, run
from _forkcli import PIPE, cli_server
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

KiB = 1024


def _child(emulator, src: str, dest, *args: str):
    """``drivestage pull SRC DEST -q ARGS`` in a child (forked with the CLI imported)."""
    return cli_server().popen(["pull", src, str(dest), "-q", *args], env=child_env(emulator),
                              stdout=PIPE, stderr=PIPE)


def _signalled_when(proc, ready, sig: int) -> tuple[int, str]:
    """Send ``sig`` to ``proc`` once ``ready()`` (bounded), then its exit code and stderr."""
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child never got there"
            time.sleep(0.01)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err.decode()


def _temporary(dest) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.startswith(tempdir.TEMP_PREFIX))


_STOPS = [(signal.SIGTERM, 143, "Interrupted by SIGTERM."),
          (signal.SIGHUP, 129, "Interrupted by SIGHUP.")]


@pytest.mark.parametrize("sig,code,line", _STOPS)
def test_a_signal_mid_download_ends_the_pull_and_the_rerun_resumes(emulator, local_state, drive_env,
                                                                   tmp_path, sig, code, line):
    blob = os.urandom(3 << 20)
    emulator.add_file("d/big.bin", blob)
    entry = drivestage.connect().resolve("d/big.bin")
    dest = tmp_path / "data"
    target = str(dest / "big.bin")
    emulator.faults.throttle(512 << 10)   # 6 s for the whole file: stopped well before
    proc = _child(emulator, "drive:d/big.bin", dest)
    got, err = _signalled_when(proc, lambda: dl.partial_size(target, entry) > 0, sig)
    assert (got, err) == (code, line + "\n")
    assert not os.path.exists(target)
    held = dl.partial_size(target, entry)
    assert 0 < held < len(blob)   # kept, with its record, for the rerun
    emulator.faults.throttle(None)
    rc, out, err = run("pull", "drive:d/big.bin", str(dest), "-q", "--json")
    assert (rc, err) == (0, "")
    summary = json.loads(out)
    assert summary["action"] == "resume" and summary["resumed_from"] >= held, summary
    assert tree(dest) == {"big.bin": blob}


@pytest.mark.parametrize("sig,code,line", _STOPS)
def test_a_signal_mid_extraction_leaves_no_temporary_folder_and_the_rerun_resumes(
        emulator, local_state, drive_env, tmp_path, sig, code, line):
    """Members are being written into the temporary folder as the zip's bytes arrive."""
    members = {f"ds/p{i:02d}.bin": os.urandom(32 * KiB) for i in range(48)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    emulator.faults.throttle(256 << 10)   # 6 s for the whole zip: stopped well before

    def extracting() -> bool:
        return dest.exists() and any(len(list(p.glob("ds/*"))) >= 1
                                     for p in dest.glob(tempdir.TEMP_PREFIX + "*"))
    proc = _child(emulator, "drive:d/set.zip", dest, "-x")
    got, err = _signalled_when(proc, extracting, sig)
    assert (got, err) == (code, line + "\n")
    assert _temporary(dest) == []
    assert [n for n in tree(dest) if not n.startswith(".")] == []   # nothing under a name
    emulator.faults.throttle(None)
    rc, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q", "--json")
    assert (rc, err) == (0, "")
    summary = json.loads(out)
    assert summary["action"] == "resume" and summary["resumed_from"] > 0, summary
    assert tree(dest) == {"set.zip": blob, **members}
    assert _temporary(dest) == []


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_a_sigterm_during_a_clean_up_is_held_to_its_end_as_a_ctrl_c_is(sigint):
    """A clean-up (a temporary folder's removal) that a SIGTERM cut in two would leave half
    of it behind: held back as a Ctrl-C is, then raised as :class:`Stopped`; also in a
    background job, whose SIGINT is ignored (there a Ctrl-C is held by nothing)."""
    from drivestage.interrupts import deferred
    from drivestage.stop_signals import Stopped, as_ctrl_c

    before = signal.getsignal(signal.SIGINT)
    if sigint == "ignored":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    done = []
    try:
        with pytest.raises(Stopped) as stopped:
            with as_ctrl_c():
                with deferred():
                    signal.raise_signal(signal.SIGTERM)   # its handler runs right here
                    done.append("the clean-up's end")
                done.append("after")
    finally:
        signal.signal(signal.SIGINT, before)
    assert done == ["the clean-up's end"]
    assert (stopped.value.exit_code, stopped.value.line()) == (143, "Interrupted by SIGTERM.")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL   # put back


def test_a_hang_up_ignored_under_nohup_stays_ignored():
    from drivestage.stop_signals import as_ctrl_c

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with as_ctrl_c():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)
