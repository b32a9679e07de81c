"""``drivestage mirror`` stopped by a hang-up first (an SSH session dropped, or systemd's pair
delivered SIGHUP first), then a SIGTERM, then the user's own SIGTERM (attackds32).

A SIGHUP is never the second signal, nor systemd's SIGTERM right after it: the final push
goes on. But every SIGTERM after a hang-up was taken for systemd's: ``kill <pid>`` (no
terminal is left for a Ctrl-C) never abandoned the final push, which ran to its end or its
--grace, however long. Now only one SIGTERM after the SIGHUP is systemd's; the next is the
user's second signal: the abandon line, exit 130. In process (CliRunner), with real signals.
"""
from __future__ import annotations

import os
import signal
import threading
import time

from click.testing import CliRunner

from _mirror_signal import chunks_watched
from drivestage.cli import cli


def test_a_second_sigterm_after_a_hangup_and_its_sigterm_abandons_the_final_push(
        emulator, local_state, drive_env, tmp_path, monkeypatch):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    # (the 3rd: the final push's second chunk)
    first_push_sends, final_push_sent_a_chunk = chunks_watched(emulator, monkeypatch, 3)
    failed, last_sent = [], []
    main = threading.main_thread().ident

    def hangup_pair_then_kill():
        try:
            assert first_push_sends.wait(30), "the first push never sent results.csv"
            (src / "epoch_001.pt").write_bytes(os.urandom(16 * 256 * 1024))
            # The final push would take 8 s (6.5 s after its second chunk): ignoring the
            # last SIGTERM is told from acting on it by far more than a loaded machine's
            # lateness (at 2 s in all, the bound below had no room for either).
            emulator.faults.throttle(512 << 10)
            signal.pthread_kill(main, signal.SIGHUP)
            signal.pthread_kill(main, signal.SIGTERM)
            assert final_push_sent_a_chunk.wait(30), "the final push never sent a chunk"
            last_sent.append(time.monotonic())
            signal.pthread_kill(main, signal.SIGTERM)   # the user's `kill <pid>`
        except BaseException as exc:
            failed.append(exc)
            signal.pthread_kill(main, signal.SIGINT)   # the mirror must end all the same

    helper = threading.Thread(target=hangup_pair_then_kill)
    helper.start()
    result = CliRunner().invoke(cli, ["mirror", str(src), "drive:Models/logs", "--every",
                                      "3600", "--chunk-size", "256KiB"])
    took = time.monotonic() - last_sent[0] if last_sent else None
    helper.join()
    emulator.faults.throttle(None)
    assert not failed, failed
    assert result.exit_code == 130, result.output
    assert result.stderr.splitlines()[-1] == (
        "Interrupted: the final push was abandoned (a cut upload resumes on the next push).")
    assert took is not None and took < 4, took
    assert [f["title"] for f in emulator.files() if not f["mimeType"].endswith(".folder")] \
        == ["results.csv"]


def test_a_hangup_held_while_it_started_then_systemds_sigterm_pushes_once_more(
        emulator, local_state, drive_env, tmp_path, monkeypatch):
    """systemd's pair straddling the moment the mirror's handlers are installed: the SIGHUP
    held while the command loaded (:mod:`drivestage.held_signals`), its SIGTERM after. The
    held signal was replayed as a SIGTERM, so systemd's own was taken for the second one:
    the final push abandoned, exit 130. It is replayed as what it was: one push, exit 0."""
    import json

    from drivestage import held_signals

    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    fifo = tmp_path / "token.json"   # DEST's credentials, read once the handlers are in place
    os.mkfifo(fifo)
    monkeypatch.delenv("DRIVESTAGE_TOKEN")
    token = json.dumps({"type": "authorized_user", "token": "test-token", "refresh_token": "r",
                        "client_id": "c", "client_secret": "s",
                        "expiry": "2099-01-01T00:00:00Z"})
    main, failed = threading.main_thread().ident, []

    def systemds_sigterm():
        try:
            with open(fifo, "w") as writer:   # open once the mirror opened it to read
                signal.pthread_kill(main, signal.SIGTERM)
                writer.write(token)
        except BaseException as exc:
            failed.append(exc)

    before = {s: signal.signal(s, signal.SIG_DFL) for s in held_signals.HELD}
    held_signals.hold()   # as the console script does, before anything loads
    try:
        assert signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL   # (held, not fatal)
        os.kill(os.getpid(), signal.SIGHUP)   # while the command loads: held
        helper = threading.Thread(target=systemds_sigterm)
        helper.start()
        result = CliRunner().invoke(cli, ["mirror", str(src), "drive:Models/logs", "--every",
                                          "3600", "--credentials", str(fifo)])
        helper.join()
    finally:
        held_signals.release()
        for s, handler in before.items():
            signal.signal(s, handler)
    assert not failed, failed
    assert result.exit_code == 0, result.output
    assert "final push in" in result.stderr and "Interrupted" not in result.stderr
    assert [f["title"] for f in emulator.files() if not f["mimeType"].endswith(".folder")] \
        == ["results.csv"]
