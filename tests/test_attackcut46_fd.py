"""The cut of a stopped download's connections (stuckconn46) shuts sockets down from the
stopping thread while the streams' threads read and close them: it must never meet a
descriptor closed meanwhile, which the kernel may have given to another file or socket (a
second pull's connection, the in-process emulator's, an upload's) by the time the shutdown
runs. So every close of a socket the cut can reach waits for a cut under way (the lines'
lock). An answer that ends with its connection (``Connection: close``: http.client hands
its socket to the answer) closed its socket outside that lock when its body ended
(attackcut46): here a cut under way is stood for by the lines' lock, held by the test while
such an answer reaches its end; the answer's socket must still be open until it is let go."""
from __future__ import annotations

import gc
import os
import threading
import time

from _leaks import our_threads
from _proxy import Proxy, held_half
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)
from test_stuckconn46_cut import _BOUND

import drivestage
from drivestage.stream_lines import StreamLines
from trainer.stuck import current_frames   # (sys._current_frames() can deadlock: see there)

KiB = 1024


def _lines_in_use() -> list[StreamLines]:
    """The stream lines some connection is read on now."""
    return [o for o in gc.get_objects() if isinstance(o, StreamLines) and o._open]


def _waits_in_close(thread: threading.Thread) -> bool:
    """Whether ``thread`` waits in :func:`drivestage.stream_lines.close` now."""
    frame = current_frames().get(thread.ident)   # type: ignore[arg-type]
    while frame is not None:
        if frame.f_code.co_name == "close" and frame.f_code.co_filename.endswith(
                "stream_lines.py"):
            return True
        frame = frame.f_back
    return False


def test_an_answer_that_ends_with_its_connection_closes_it_under_the_lines_lock(
        emulator, local_state, drive_env, tmp_path, monkeypatch):
    data = os.urandom(256 * KiB)
    emulator.add_file("d/f0.bin", data)
    reached, gate = threading.Event(), threading.Event()
    held = held_half(reached, gate)

    dest = tmp_path / "data"
    before = our_threads()
    with Proxy(emulator.url) as proxy:
        proxy.on("GET", r"alt=media", held, times=1)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        got: list[BaseException] = []

        def body() -> None:
            try:
                drivestage.pull("drive:d/f0.bin", str(dest), quiet=True, jobs=1)
            except BaseException as exc:
                got.append(exc)

        puller = threading.Thread(target=body, name="test-pull")
        puller.start()
        try:
            assert reached.wait(60), "the download never reached the hold"
            [lines] = _lines_in_use()
            answers = [c for c in lines._open if c.sock is not None]
            [answer] = answers   # (its connection let go of the socket: the answer holds it)
            [stream] = [t for t in our_threads() - before if t.name == "drivestage-fetch"]
            with lines._lock:   # (a cut under way)
                gate.set()
                deadline = time.monotonic() + _BOUND
                while not _waits_in_close(stream):
                    assert answer.sock.fileno() != -1, \
                        "the answer's socket was closed while a cut could be shutting it down"
                    assert time.monotonic() < deadline, "the stream never came to its close"
                    time.sleep(0.01)   # (a poll of the stream's state, bounded above)
                assert answer.sock.fileno() != -1
        finally:
            gate.set()
            puller.join(_BOUND)
        assert not puller.is_alive() and got == []
    assert (dest / "f0.bin").read_bytes() == data
