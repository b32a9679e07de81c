"""Blocks read again and again reuse their pages instead of faulting in fresh ones.

On a VM that hands free memory back to its host, each fresh page costs kernel time twice
(see drivestage/heap.py): a 1 GiB ``pull --extract`` faulted in 150,000-200,000 pages before
this. The counts are the kernel's own (``ru_minflt``), measured in a child process so that
the malloc settings of the ``drivestage`` command apply and this test process keeps its own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="glibc malloc settings and ru_minflt are Linux's")

_CHILD = r"""
import json, os, resource, sys, threading
from drivestage.heap import tune_for_transfers
from drivestage.checksums import file_digest
path, what = sys.argv[1], sys.argv[2]
tuned = tune_for_transfers()

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

fd = os.open(path, os.O_RDONLY)
got = {}

def reads():
    # A stream's body pieces (1 MiB, in a thread: its own heap), freed after each write.
    os.pread(fd, 1 << 20, 0)      # the first block faults: the heap grows once
    before = faults()
    for _ in range(64):
        data = os.pread(fd, 1 << 20, 0)
        del data
    got["faults"] = faults() - before

if what == "digest":
    before = faults()
    file_digest(path, "md5")
    got["faults"] = faults() - before
else:
    worker = threading.Thread(target=reads)
    worker.start()
    worker.join()
print(json.dumps({"tuned": tuned, **got}))
"""


def _child(path: str, what: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, path, what], capture_output=True,
                         text=True, check=True, env=dict(os.environ))
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("pages") / "blocks.bin")
    with open(path, "wb") as fh:
        for i in range(64):
            fh.write(bytes([i]) * (1 << 20))
    return path


def test_blocks_freed_and_read_again_in_a_thread_reuse_their_pages(big_file: str) -> None:
    got = _child(big_file, "reads")
    assert got["tuned"] is True
    # 64 reads of 1 MiB: with the mmap threshold fixed and the trim threshold left as it was,
    # a thread's heap gave each freed block back and the next read faulted in 14,336 pages.
    assert got["faults"] < 64 * 256 // 4, got


def test_hashing_a_file_reads_into_one_buffer(big_file: str) -> None:
    got = _child(big_file, "digest")
    # 64 MiB read in 4 MiB blocks: fresh blocks would fault in 16,384 pages.
    assert got["faults"] < 64 * 256 // 4, got
