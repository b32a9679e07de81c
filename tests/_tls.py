"""Self-signed certificates for the tests' TLS servers and proxies: ``openssl req -x509`` with
a new RSA-2048 key for the subject and its subjectAltName, made once per test process for each
(a key's prime search costs openssl ~0.15 CPU-s, and a suite run made ~33 such keys) and
written anew into each test's own folder (a test may change its copy: add a CA to it)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

#: (subject, subjectAltName) -> (the certificate's bytes, its key's bytes).
_MADE: dict[tuple[str, str], tuple[bytes, bytes]] = {}


def self_signed(where: Path, subject: str = "/CN=127.0.0.1",
                alt: str = "IP:127.0.0.1") -> tuple[str, str]:
    """``(cert, key)``: ``where/cert.pem`` and ``where/key.pem`` (the key readable by its
    owner only, as openssl writes it), a certificate for ``subject`` that nothing signed.
    Two subjects never share a key; two tests of a process with the same subject do."""
    cert, key = str(where / "cert.pem"), str(where / "key.pem")
    made = _MADE.get((subject, alt))
    if made is None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", subject, "-addext", f"subjectAltName={alt}",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        _MADE[(subject, alt)] = (Path(cert).read_bytes(), Path(key).read_bytes())
        return cert, key
    for path, data, mode in ((cert, made[0], 0o644), (key, made[1], 0o600)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return cert, key
