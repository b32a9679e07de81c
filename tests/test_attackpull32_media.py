"""A download answered with its bytes compressed (``Content-Encoding: gzip``) though the client
asked for them as they are (attackpull32).

http.client asks every GET for ``Accept-Encoding: identity``, and Drive answers media so. A
proxy that compresses anyway (some corporate and mobile-network proxies do) sends other bytes
than the file's: a compressible archive came shorter than announced and was retried as a
"short body" until ``still failing after N attempts (short body: ...); try again later``
(minutes of backoff, at every rerun); random bytes came longer and ended "is longer than
that". The encoding is said at the first answer, once, and nothing is retried or staged.
In-process CLI against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import gzip
import os

import pytest

import _cli
from _archives import a_fixed_zip
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply


def _compressed(status: int, headers: dict, body: bytes) -> Reply:
    out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    packed = gzip.compress(body, mtime=0)
    out.update({"Content-Encoding": "gzip", "Content-Length": str(len(packed))})
    return Reply(status, out, [packed])


@pytest.mark.parametrize("kind", ["shorter", "longer"])
def test_a_download_answered_compressed_is_one_line_naming_the_encoding(
        emulator, proxy, liar_env, tmp_path, kind):
    data = a_fixed_zip({f"ds/{i}.txt": bytes(4000) for i in range(40)}) if kind == "shorter" \
        else os.urandom(200 * 1024)
    emulator.add_file("VOC/set.zip", data)
    proxy.on("GET", r"alt=media", _compressed)
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", "drive:VOC/set.zip", str(dest), "-x", "-j", "1")

    assert one_error_line(code, err) == (
        "Error: download drive:VOC/set.zip: the server sent its bytes compressed "
        "(Content-Encoding: gzip), though drivestage asks for them as they are: that is not "
        "Drive's answer; something between here and Drive (a proxy?) rewrites it. Check "
        "--api-root / DRIVESTAGE_API_ROOT and any proxy, or try another network")
    assert "retry" not in err
    assert proxy.count("GET", "alt=media") <= 2   # a zip's tail and front asked at once; no retry
    assert sorted(n for n in os.listdir(dest) if not n.startswith(".")) == []
    proxy.rules.clear()
    code, out, err = _cli.run("pull", "drive:VOC/set.zip", str(dest), "-q")
    assert code == 0, err
    assert (dest / "set.zip").read_bytes() == data
