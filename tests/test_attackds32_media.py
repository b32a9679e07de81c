"""A download answered with ``Content-Encoding`` twice: ``gzip`` (a proxy's) and ``identity``
(attackds32).

The encodings of repeated fields are one list (RFC 9110, 5.3): the bytes are gzip's. Only the
last field was read, ``identity``, so the compressed bytes were taken for the file's and
retried as a short body for minutes (``still failing after N attempts (short body …)``).
Now the first answer is the line that names the encodings, as for one field.
In-process CLI against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import gzip
import os

import _cli
from _archives import a_fixed_zip
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply


def _compressed_twice(status: int, headers: dict, body: bytes) -> Reply:
    out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    packed = gzip.compress(body, mtime=0)
    # (two fields: a dict's keys differ in case only)
    out.update({"Content-Encoding": "gzip", "content-encoding": "identity",
                "Content-Length": str(len(packed))})
    return Reply(status, out, [packed])


def test_a_download_with_a_repeated_content_encoding_is_one_line_naming_both(
        emulator, proxy, liar_env, tmp_path):
    data = a_fixed_zip({f"ds/{i}.txt": bytes(4000) for i in range(40)})
    emulator.add_file("VOC/set.zip", data)
    proxy.on("GET", r"alt=media", _compressed_twice)
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", "drive:VOC/set.zip", str(dest), "-x", "-j", "1")

    assert one_error_line(code, err) == (
        "Error: download drive:VOC/set.zip: the server sent its bytes compressed "
        "(Content-Encoding: gzip, identity), though drivestage asks for them as they are: that "
        "is not Drive's answer; something between here and Drive (a proxy?) rewrites it. Check "
        "--api-root / DRIVESTAGE_API_ROOT and any proxy, or try another network")
    assert "retry" not in err
    assert proxy.count("GET", "alt=media") <= 2   # a zip's tail and front asked at once; no retry
    assert sorted(n for n in os.listdir(dest) if not n.startswith(".")) == []
