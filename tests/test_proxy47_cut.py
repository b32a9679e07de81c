"""A pull stopped while a stream asks the proxy for its tunnel (proxy47, attackcut46's "through
an HTTP proxy"): httplib2's proxy connect set the connection's socket before connecting and
closed it itself on a failure, outside the download's stream lines (a stop's cut could then
meet a descriptor already another file's). The tunnel is now asked on the socket
``drive/sliced.py`` makes (``stream_lines.Making``: cut while made, closed once no longer the
stream lines'). The proxy here answers the stream's CONNECT (to the signed download host)
never: the stop must end it, the proxy see its end closed, every thread of the pull end.
On 556f8e4f (PySocks blocked) the proxy was never asked: the stop never came."""
from __future__ import annotations

import threading

from _connect_proxy import ConnectProxy, behind  # noqa: F401  (a fixture)
from _leaks import our_threads
from _signal_env import _fast  # noqa: F401  (an autouse fixture)
from test_stuckconn46_cut import _BOUND, _stopped_in_thread

import drivestage


def test_a_pull_stopped_while_the_proxy_holds_its_tunnel_ends_it(emulator, behind, tmp_path):
    data = b"d" * 4096
    emulator.add_file("d/f0.bin", data)
    emulator.faults.redirect_media(307, times=1, origin=f"http://localhost:{emulator.port}")
    dest = tmp_path / "data"
    with behind(ConnectProxy(hold=threading.Event(), hold_target="localhost:")) as proxy:
        before = our_threads()
        exc = _stopped_in_thread(lambda: drivestage.pull(
            "drive:d/f0.bin", str(dest), quiet=True, jobs=1), proxy.held)
        assert isinstance(exc, KeyboardInterrupt), repr(exc)
        assert proxy.gone.wait(_BOUND), "the connection waiting for its tunnel was left open"
        for thread in our_threads() - before:
            thread.join(_BOUND)
            assert not thread.is_alive(), f"{thread.name} outlived the stopped pull"
        drivestage.pull("drive:d/f0.bin", str(dest), quiet=True)
    assert (dest / "f0.bin").read_bytes() == data
    assert proxy.asked[-1] == f"CONNECT 127.0.0.1:{emulator.port} HTTP/1.1"   # (no redirect)
