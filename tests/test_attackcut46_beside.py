"""Two pulls in one process (a notebook's two threads): the first stopped while Drive holds
both answers mid-body. Its cut (stuckconn46) shuts down its own stream's connection only:
the second's held answer keeps its client, and once it goes on the second pull completes
md5-exact on that same answer (one download request, no retry), its bytes not cut short.
(Pinned by attackcut46: the connections are each pass's, kept per thread; this passes on
integ too.)"""
from __future__ import annotations

import os
import threading

from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)
from test_stuckconn46_cut import _BOUND, _stopped_in_thread

import drivestage

KiB = 1024


def test_a_stopped_pull_cuts_none_of_the_pull_beside_it(emulator, local_state, drive_env,
                                                        tmp_path):
    first, second = os.urandom(512 * KiB), os.urandom(512 * KiB)
    emulator.add_file("d/a.bin", first)
    emulator.add_file("d/b.bin", second)
    b_id = emulator.find("d/b.bin")["id"]
    held_a = emulator.faults.hold(emulator.find("d/a.bin")["id"], len(first) // 2)
    held_b = emulator.faults.hold(b_id, len(second) // 2)
    got: list[BaseException] = []

    def pull_b() -> None:
        try:
            drivestage.pull("drive:d/b.bin", str(tmp_path / "b"), quiet=True, jobs=1)
        except BaseException as exc:
            got.append(exc)

    beside = threading.Thread(target=pull_b, name="test-pull-b")
    beside.start()
    try:
        assert held_b.reached.wait(60), "the second pull never reached its hold"
        exc = _stopped_in_thread(lambda: drivestage.pull(
            "drive:d/a.bin", str(tmp_path / "a"), quiet=True, jobs=1), held_a.reached)
        assert isinstance(exc, KeyboardInterrupt), repr(exc)
        assert held_a.hung_up.wait(_BOUND), "the stopped pull's connection was left open"
        assert not held_b.hung_up.is_set(), "the stop cut the other pull's connection"
        held_b.release()
        beside.join(_BOUND)
        assert not beside.is_alive() and got == []
    finally:
        held_a.release()
        held_b.release()
        beside.join(_BOUND)
    assert (tmp_path / "b" / "b.bin").read_bytes() == second
    media = [r for r in emulator.requests if r.kind == "media.download" and b_id in r.path]
    assert len(media) == 1, media
    drivestage.pull("drive:d/a.bin", str(tmp_path / "a"), quiet=True)
    assert (tmp_path / "a" / "a.bin").read_bytes() == first
