"""The CA file an ``https://`` proxy's certificate is checked by, read again once it changed
(attackint48). The line for an untrusted proxy says to put the CA that signed it in the file
HTTPLIB2_CA_CERTS names; httplib2 reads that file at each connection it makes (Drive's
TLS), but the proxy's TLS context was made once per process and kept: a notebook that did
what the line says (the proxy's CA added to the file) and pulled again was refused again
until its runtime restarted; a mirror kept failing after the bundle was updated for a
proxy's new CA."""
from __future__ import annotations

import shutil

import httplib2

from _cli import run
from _connect_proxy import behind  # noqa: F401  (a fixture)
from test_fidelity28_signed import tls  # noqa: F401  (a fixture)
from test_proxy48_tls import _TlsProxy, untrusted


def test_the_proxys_ca_added_to_the_file_is_trusted_by_the_next_pull_in_this_process(
        emulator, behind, tls, tmp_path, tmp_path_factory, monkeypatch):
    emulator.add_file("f.bin", b"x" * 100)
    cert, key = untrusted(tmp_path_factory)
    bundle = tmp_path / "ca.pem"
    shutil.copyfile(tls[0], bundle)   # (the CAs this process trusted: not the proxy's)
    monkeypatch.setattr(httplib2, "CA_CERTS", str(bundle))
    with _TlsProxy(cert, key) as proxy:
        behind(proxy)
        monkeypatch.setenv("HTTP_PROXY", f"https://127.0.0.1:{proxy.port}")
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        assert code == 1 and "showed a certificate this machine does not trust" in err, err
        with open(bundle, "a") as out, open(cert) as theirs:   # (what the line says to do)
            out.write(theirs.read())
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        assert code == 0, err
        assert proxy.tunnels >= 1
    assert (tmp_path / "in" / "f.bin").read_bytes() == b"x" * 100
