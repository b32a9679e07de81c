"""Property: whatever the chunking, drops and retries, a resumable upload stores exactly the bytes sent."""
from __future__ import annotations

import hashlib
import http.client
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


UNIT = 256 * 1024


def _put(emu, loc, body, content_range):
    u = urlsplit(emu.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("PUT", loc, body=body, headers={"Authorization": "Bearer t", "Content-Range": content_range})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Range"), resp.read()
    except (ConnectionError, http.client.HTTPException, OSError):
        return None, None, b""
    finally:
        conn.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 3 * UNIT + 300), units=st.lists(st.integers(1, 3), min_size=1, max_size=6),
       drops=st.lists(st.integers(0, 2 * UNIT), max_size=3), seed=st.integers(0, 255))
def test_resumable_upload_stores_exact_bytes(emulator, size, units, drops, seed):
    data = bytes((i * 7 + seed) % 256 for i in range(size))
    u = urlsplit(emulator.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("POST", "/upload/drive/v2/files?uploadType=resumable", body=b'{"title": "p"}',
                 headers={"Authorization": "Bearer t", "X-Upload-Content-Length": str(size)})
    resp = conn.getresponse()
    resp.read()
    loc = "/" + resp.getheader("Location").split("/", 3)[3]
    conn.close()
    for d in drops:
        emulator.faults.drop("PUT", r"upload_id=", after_bytes=d, direction="request")
    result, step = None, 0
    for _ in range(50):
        status, rng, body = _put(emulator, loc, b"", f"bytes */{size}")
        if status == 200:
            result = body
            break
        offset = int(rng.split("-")[1]) + 1 if rng else 0
        n = min(units[step % len(units)] * UNIT, size - offset)
        step += 1
        _put(emulator, loc, data[offset:offset + n], f"bytes {offset}-{offset + n - 1}/{size}" if n else f"bytes */{size}")
    assert result is not None
    import json
    f = json.loads(result)
    assert f["md5Checksum"] == hashlib.md5(data).hexdigest() and f["fileSize"] == str(size)
    assert emulator.read_bytes(f["id"]) == data
    emulator.faults.clear()
