"""fidelity24: resumable uploads as Drive's upload guide describes them
(https://developers.google.com/drive/api/guides/manage-uploads#resumable): "Use the Range
header in the response to determine where to start the next chunk. Do not assume that the
server received all bytes sent in the previous request." Real PyDrive2/googleapiclient over
HTTP against the emulator (``Faults.keep_less``)."""
from __future__ import annotations

import hashlib
import os

from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect

KiB = 1024


def _chunk_puts(emulator) -> list:
    return [r for r in emulator.requests if r.method == "PUT" and "upload_id" in r.query]


def test_a_308_that_keeps_less_than_was_sent_is_resumed_from_its_range(emulator, env,
                                                                        tmp_path):
    """Each of the first three chunks (512 KiB) is answered 308 with a Range 256 KiB short:
    the next chunk starts where Drive says, and the file on Drive is the local one."""
    data = os.urandom(1024 * KiB + 100)
    src = tmp_path / "big.pt"
    src.write_bytes(data)
    emulator.add_folder("Models")
    emulator.faults.keep_less(256 * KiB, times=3)
    store = connect(api_root=emulator.url, token="test-token")
    folder = store.resolve("Models")
    entry = store.upload(str(src), folder, "big.pt", chunk_size=512 * KiB)
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert emulator.find("Models/big.pt")["md5Checksum"] == hashlib.md5(data).hexdigest()
    puts = _chunk_puts(emulator)
    # 0-512K keeps 256K, 256K-768K keeps 512K, 512K-1M keeps 768K, then 768K-1M+100 whole
    assert [r.status for r in puts] == [308, 308, 308, 200]
    ranges = [r.headers.get("Content-Range") or r.headers.get("content-range") for r in puts]
    assert ranges[1].startswith("bytes 262144-") and ranges[2].startswith("bytes 524288-")


def test_a_final_chunk_answered_308_with_nothing_kept_is_sent_again(emulator, env, tmp_path):
    """The one (final) chunk of a small file is answered 308 without a Range (Drive kept
    none of it, the guide's "If the response doesn't have a Range header, no bytes have been
    received"): it is sent again whole, and the file is complete once."""
    data = os.urandom(300 * KiB)
    src = tmp_path / "small.pt"
    src.write_bytes(data)
    emulator.add_folder("Models")
    emulator.faults.keep_less(256 * KiB, times=1)
    store = connect(api_root=emulator.url, token="test-token")
    entry = store.upload(str(src), store.resolve("Models"), "small.pt", chunk_size=512 * KiB)
    assert entry.md5 == hashlib.md5(data).hexdigest()
    puts = _chunk_puts(emulator)
    assert [r.status for r in puts] == [308, 200]
    assert len(emulator.store.children(emulator.find("Models")["id"])) == 1
