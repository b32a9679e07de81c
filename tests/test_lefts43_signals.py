"""Signals of one command, in the order they came (attacksig42's leftover): a Ctrl-C, then a
SIGTERM while the Ctrl-C's clean-up ran, ended as "Interrupted by SIGTERM." (143): the
SIGTERM, taken as the first stop of the block, was raised there (cutting that clean-up) and
named. A shell reports the first signal; the first decides: 130, "Interrupted.", the clean-up
whole, the SIGTERM noted as a repeat."""
from __future__ import annotations

import signal

import pytest

from drivestage.stop_signals import Stopped, as_ctrl_c


@pytest.fixture
def ctrl_c():
    """SIGINT at Python's own handler (a KeyboardInterrupt), as in a terminal's process."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.mark.parametrize("program", [True, False])
@pytest.mark.parametrize("then", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_during_a_ctrl_cs_clean_up_leaves_the_ctrl_c_its_exit(ctrl_c, program, then):
    done = []
    with pytest.raises(KeyboardInterrupt) as ended:
        with as_ctrl_c(program=program):
            try:
                signal.raise_signal(signal.SIGINT)
            finally:
                signal.raise_signal(then)     # its handler runs right here
                done.append("cleaned up")
    assert done == ["cleaned up"]
    assert not isinstance(ended.value, Stopped)     # the group's "Interrupted." and 130
    # As a program stopped, the signals stay ignored to its exit (a repeat cannot kill it
    # before its line); a guest's handlers are put back.
    want = signal.SIG_IGN if program else signal.SIG_DFL
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == (want, want)


def test_a_ctrl_c_during_a_stops_clean_up_leaves_the_stop_its_exit(ctrl_c):
    """The other order, as before: the SIGTERM's 143."""
    with pytest.raises(Stopped) as ended:
        with as_ctrl_c():
            try:
                signal.raise_signal(signal.SIGTERM)
            finally:
                signal.raise_signal(signal.SIGINT)
    assert (ended.value.exit_code, ended.value.line()) == (143, "Interrupted by SIGTERM.")


def test_the_next_command_takes_its_first_stop_again(ctrl_c):
    """What a block noted is gone at its end: a later block's SIGTERM ends it as 143."""
    with pytest.raises(KeyboardInterrupt):
        with as_ctrl_c():
            try:
                signal.raise_signal(signal.SIGINT)
            finally:
                signal.raise_signal(signal.SIGTERM)
    with pytest.raises(Stopped) as ended:
        with as_ctrl_c():
            signal.raise_signal(signal.SIGTERM)
    assert ended.value.exit_code == 143


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_login_stopped_at_its_prompt_ends_as_the_other_commands(tmp_path, local_state,
                                                                   sig, code):
    """``auth login`` waiting for its code (stdin open, nothing pasted): a SIGTERM killed it
    at once (-15 to its parent, no word). Now its line and 143 (SIGHUP: 129), no token file
    written, nothing beside it."""
    import os
    import select
    import time

    from _forkcli import PIPE, cli_server

    secrets = tmp_path / "client_secret.json"
    secrets.write_text('{"installed": {"client_id": "cid", "client_secret": "cs"}}')
    token = tmp_path / "tok" / "token.json"
    proc = cli_server().popen(["auth", "login", "--client-secrets", str(secrets),
                               "--token-file", str(token)], stdin=PIPE, stderr=PIPE,
                              stdout=PIPE)
    try:
        said, deadline = b"", time.monotonic() + 60
        fd = proc.stderr.fileno()
        while b"Address or code" not in said:      # at its prompt (click writes it, then reads)
            assert time.monotonic() < deadline and proc.poll() is None, said
            if select.select([fd], [], [], 0.5)[0]:
                said += os.read(fd, 65536)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines = [line for line in (said + err).decode().splitlines() if line.strip()]
    assert (proc.returncode, lines[-1]) == (code, f"Interrupted by {signal.Signals(sig).name}."), lines
    assert "Traceback" not in err.decode() and "no code was pasted" not in err.decode()
    assert not token.exists() and not token.parent.exists() or list(token.parent.iterdir()) == []
