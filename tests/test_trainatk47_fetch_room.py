"""trainatk47 (1): another machine's fetch of rank 0's checkpoint (multi-machine DDP,
``trainer.chosen.ensure_local_checkpoint``) on a lying server: a checkpoint listed as 0 bytes,
or one whose download never ends. The room check (trainlefts46) uses the listed size, so a
listing of 0 would skip it; what bounds the disk is checked here (a pin: this held on main):

- rank 0 sends a Drive file only when its listing names rank 0's md5 *and size*
  (``chosen_bytes``): one listed as 0 bytes is not sent, and the machine says that Drive
  does not hold those bytes, with no request for them;
- a download asks for the listed size and stops reading an answer longer than that (an
  endless one included): nothing under the checkpoint's name, the disk not filled.

A 1 MiB tmpfs that an endless answer would fill; the emulator behind tests/_proxy.py."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from _proxy import Reply, endless
from _tmpfs import small_disk  # noqa: F401  (fixture)
from test_lastkeep32_drive import SPEC

FOLDER = SPEC.split(":", 1)[1]
METADATA = r"^/drive/v2/files(/[^/?]+)?\?(?!.*alt=media)"


def _listed_as_empty(file_id: str):
    """files.get and files.list answers that say ``file_id`` holds 0 bytes."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        obj = json.loads(body)
        for res in obj.get("items", [obj]):
            if res.get("id") == file_id:
                res["fileSize"] = "0"
        data = json.dumps(obj).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(data))
        return Reply(status, out, [data])
    return mutate


@pytest.mark.parametrize("lie", ["listed_as_0_bytes", "endless_download"])
def test_a_lying_server_never_fills_the_disk_of_a_machine_fetching_rank_0s_checkpoint(
        emulator, through, tmp_path, small_disk, lie):
    from drivestage.remote import open_store
    from trainer.errors import CheckpointError
    from trainer.resume import chosen_bytes, ensure_local_checkpoint

    data = bytes(range(256)) * 1024   # 256 KiB
    fid = emulator.add_file(f"{FOLDER}/epoch_004.pt", data)
    if lie == "listed_as_0_bytes":
        through.on("GET", METADATA, _listed_as_empty(fid))
    else:
        through.on("GET", r"alt=media", endless)
    store, path = open_store(f"{SPEC}/epoch_004.pt")
    mine = tmp_path / "rank0" / "epoch_004.pt"   # rank 0's own copy (the bytes it loads)
    mine.parent.mkdir()
    mine.write_bytes(data)
    chosen = chosen_bytes(str(mine), f"{SPEC}/epoch_004.pt", store.resolve(path))
    logs = small_disk(1 << 20) / "logs"
    with pytest.raises(Exception) as failed:
        ensure_local_checkpoint(str(logs / "epoch_004.pt"), chosen)
    if lie == "listed_as_0_bytes":
        assert chosen.entry is None and isinstance(failed.value, CheckpointError)
        assert "Drive does not hold" in str(failed.value)
        assert through.count("GET", "alt=media") == 0
    else:
        assert chosen.entry is not None and chosen.entry.size == len(data)
        assert "is longer than that (it kept sending); stopped reading it" in str(failed.value)
        assert through.count("GET", "alt=media") == 1
    assert not (logs / "epoch_004.pt").exists()
    held = sum(p.stat().st_size for p in logs.iterdir()) if logs.exists() else 0
    assert held <= len(data) + 4096, held   # (a partial of at most the listed size, a record)
    assert hashlib.md5(mine.read_bytes()).hexdigest() == chosen.md5 and os.path.isfile(mine)
