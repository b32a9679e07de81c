"""An ``https://`` proxy spoken to in TLS (proxy48): ``HTTPS_PROXY=https://USER:PASSWORD@host``
means the hop to the proxy encrypted, yet drivestage (as httplib2 and PySocks) sent the
``CONNECT`` and its ``Proxy-Authorization`` there in clear. Now the connection to the proxy is
TLS (its certificate verified by the CAs Drive's is), the CONNECT in it, Drive's TLS inside.

The proxy here ends TLS itself (the ``tls`` fixture's certificate for 127.0.0.1, which this
process's httplib2 trusts) and tunnels to the emulator; a relay in front of it (``_Wire``)
keeps every byte that crossed the network between drivestage and the proxy, where the
password must never be."""
from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import ssl
import subprocess
import sys
import threading

from _cli import child_env, run
from _connect_proxy import behind  # noqa: F401  (a fixture)
from _proxy import Proxy
from _relays import END, Listening, pump, read_head
from _tls import self_signed
from test_fidelity28_signed import tls  # noqa: F401  (a fixture)

CHUNK = 64 * 1024
USER, PASSWORD = "ann", "s3cret-Pa55"


class _TlsProxy(Listening):
    """A CONNECT proxy that takes TLS (``cert``, ``key``), keeps the ``Proxy-Authorization``
    it read inside it and tunnels to the target; one thread per tunnel moves both ways (an
    ``SSLSocket`` is used by one thread only)."""

    scheme = "https"

    def __init__(self, cert: str, key: str) -> None:
        super().__init__()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self.auth: list[str] = []
        self.tunnels = 0

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self._context.wrap_socket(raw, server_side=True)
            head = read_head(client)
        except OSError:   # (a client that did not trust it)
            return
        if END not in head:
            return
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        self.auth += [line.split(":", 1)[1].strip() for line in lines[1:]
                      if line.lower().startswith("proxy-authorization:")]
        host, port = lines[0].split(" ")[1].rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=30)
        self._socks.append(upstream)
        self.tunnels += 1
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        try:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 30)
                if not ready:
                    return
                if client in ready or client.pending():
                    data = client.recv(65536)   # (a whole record: it is on its way)
                    if not data:
                        return
                    upstream.sendall(data)
                if upstream in ready:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    client.sendall(data)
        except OSError:
            return
        finally:
            upstream.close()
            client.close()


class _Wire(Listening):
    """A TCP relay to ``port`` that keeps the bytes each way (``up``: to the proxy)."""

    scheme = "https"

    def __init__(self, port: int) -> None:
        super().__init__()
        self.to = port
        self.up, self.down = bytearray(), bytearray()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.to), timeout=30)
        self._socks.append(upstream)
        self._spawn(pump, upstream, client, kept=self.down)
        pump(client, upstream, kept=self.up)


def untrusted(tmp_path_factory) -> tuple[str, str]:
    """A certificate (and its key) for 127.0.0.1 that no CA this process trusts signed."""
    where = tmp_path_factory.mktemp("untrusted")
    return self_signed(where, "/CN=Some proxy")


def _secrets() -> list[bytes]:
    """What of the login could show on the wire: the password, the header's base64."""
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode())
    return [PASSWORD.encode(), basic, b"Proxy-Authorization", b"CONNECT"]


def test_an_https_proxy_is_spoken_to_in_tls_its_login_never_in_clear(
        emulator, behind, tls, tmp_path, monkeypatch):
    data = os.urandom(5 * CHUNK + 7)
    emulator.add_file("sets/f.bin", data)
    with Proxy(emulator.url, tls=tls) as api, _TlsProxy(*tls) as proxy, \
            _Wire(proxy.port) as wire:
        behind(proxy)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", api.url)
        monkeypatch.setenv("HTTPS_PROXY", f"https://{USER}:{PASSWORD}@127.0.0.1:{wire.port}")
        code, _, err = run("pull", "drive:sets/f.bin", str(tmp_path / "in"),
                           "--chunk-size", str(CHUNK), "-j", "2", "-q")
        assert code == 0, err
        assert proxy.tunnels >= 1
        assert set(proxy.auth) == {f"Basic {base64.b64encode(b'ann:s3cret-Pa55').decode()}"}
    got = (tmp_path / "in" / "f.bin").read_bytes()
    assert got == data and hashlib.md5(got).hexdigest() == hashlib.md5(data).hexdigest()
    assert len(wire.up) > 0 and api.count("GET", "alt=media") >= 1
    for secret in _secrets():   # (the whole of what crossed the wire: TLS, nothing else)
        assert secret not in wire.up and secret not in wire.down, secret


def test_a_pull_and_a_push_to_a_plain_http_api_go_in_the_proxys_tls_too(
        emulator, behind, tls, tmp_path, monkeypatch):
    data = os.urandom(3 * CHUNK)
    emulator.add_file("f.bin", data)
    with _TlsProxy(*tls) as proxy, _Wire(proxy.port) as wire:
        behind(proxy)
        monkeypatch.setenv("HTTP_PROXY", f"https://{USER}:{PASSWORD}@127.0.0.1:{wire.port}")
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"),
                           "--chunk-size", str(CHUNK), "-q")
        assert code == 0, err
        sent = os.urandom(600 * 1024)   # (and the other way: a resumable upload's PUTs)
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "w.pt").write_bytes(sent)
        code, _, err = run("push", str(tmp_path / "run"), "drive:runs/a",
                           "--chunk-size", "256KiB")
        assert code == 0, err
        assert proxy.tunnels >= 1 and len(proxy.auth) == proxy.tunnels
    assert (tmp_path / "in" / "f.bin").read_bytes() == data
    pushed = emulator.find("runs/a/w.pt")
    assert pushed["md5Checksum"] == hashlib.md5(sent).hexdigest()
    assert emulator.read_bytes(pushed["id"]) == sent
    assert len([r for r in emulator.requests if r.method == "PUT"]) == 3
    assert {r.connection for r in emulator.requests} == set(range(1, proxy.tunnels + 1))
    for secret in _secrets() + [b"GET ", b"PUT ", data[:64], sent[:64]]:   # (nor the API's)
        assert secret not in wire.up and secret not in wire.down, secret


def test_an_https_proxy_with_a_certificate_not_trusted_gets_no_login(
        emulator, behind, tls, tmp_path, tmp_path_factory, monkeypatch):
    emulator.add_file("f.bin", b"x")
    cert, key = untrusted(tmp_path_factory)
    with _TlsProxy(cert, key) as proxy, _Wire(proxy.port) as wire:
        behind(proxy)
        monkeypatch.setenv("HTTP_PROXY", f"https://{USER}:{PASSWORD}@127.0.0.1:{wire.port}")
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        assert code == 1 and proxy.tunnels == 0 and proxy.auth == [] and emulator.requests == []
        # (what the line says to do, done: its CA in HTTPLIB2_CA_CERTS, a child pulls)
        env = dict(child_env(emulator), HTTPLIB2_CA_CERTS=cert, NO_PROXY="",
                   HTTP_PROXY=f"https://{USER}:{PASSWORD}@127.0.0.1:{wire.port}")
        done = subprocess.run([sys.executable, "-m", "drivestage", "pull", "drive:f.bin",
                               str(tmp_path / "then"), "-q"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert proxy.tunnels >= 1 and (tmp_path / "then" / "f.bin").read_bytes() == b"x"
    assert code == 1
    assert err == (
        f"Error: the proxy https://127.0.0.1:{wire.port} (from HTTP_PROXY) showed a "
        "certificate this machine does not trust (self-signed certificate): put the CA "
        "certificate (PEM) that signed it in a file named by HTTPLIB2_CA_CERTS (with the CAs "
        f"Drive's needs), or name the proxy http://127.0.0.1:{wire.port} in HTTP_PROXY if it "
        "takes plain connections\n")
    assert PASSWORD not in err and not (tmp_path / "in" / "f.bin").exists()
    for secret in _secrets():
        assert secret not in wire.up, secret


def test_a_pull_stopped_while_its_stream_reads_through_the_tls_hop_ends_it(
        emulator, behind, tls, tmp_path):
    """A stop shuts the stream's end of the pair down: the thread that carried it to the
    proxy's TLS ends, the proxy sees the close (its upstream, the emulator, too)."""
    import drivestage
    from _leaks import our_threads
    from test_stuckconn46_cut import _BOUND, _stopped_in_thread

    data = os.urandom(256 * 1024)
    emulator.add_file("d/f0.bin", data)
    fid = emulator.find("d/f0.bin")["id"]
    dest = tmp_path / "data"
    with _TlsProxy(*tls) as proxy:
        behind(proxy)
        before = our_threads()
        held = emulator.faults.hold(fid, len(data) // 2)
        carrying: list[str] = []
        counted = threading.Event()

        def count() -> None:   # (the hop's threads while the stream waits: one at least)
            if held.reached.wait(60):
                carrying.extend(t.name for t in our_threads() - before
                                if t.name == "drivestage-proxy-tls")
            counted.set()
        threading.Thread(target=count, daemon=True).start()
        try:
            exc = _stopped_in_thread(lambda: drivestage.pull(
                "drive:d/f0.bin", str(dest), quiet=True, jobs=1), counted)
            assert isinstance(exc, KeyboardInterrupt), repr(exc)
            assert carrying, "no thread carried the stream to the proxy's TLS"
            assert held.hung_up.wait(_BOUND), "the held connection was left open"
            for thread in our_threads() - before:
                thread.join(_BOUND)
                assert not thread.is_alive(), f"{thread.name} outlived the stopped pull"
        finally:
            held.release()
        drivestage.pull("drive:d/f0.bin", str(dest), quiet=True)
    assert (dest / "f0.bin").read_bytes() == data
