"""attackpush45: a checkpoint saved again (truncated, or grown) while a push with retention
sends it. The upload sees the change and sends the file again as it is now; its sidecar then
names bytes that are not on Drive and is left for the next push (sidecar_copy). The plan,
made before the uploads, had counted that sidecar as vouching for the new checkpoint: it
deleted the verified pair before it (--keep-last 1), Drive was left with one checkpoint no
sidecar vouches for, and the push exited 0. Now the plan is made again without that sidecar
(as for a file gone before it was sent), and the verified pair stays until the next push
sends a new one."""
from __future__ import annotations

import json
import os

import pytest

from _checkpoints import md5, pushed_then_saved, sidecar_json
from _cli import run
from _drive_state import live_md5s
from _proxy import Reply


def _verified(emulator) -> set[str]:
    """The checkpoints on Drive whose sidecar there vouches for their bytes."""
    live = live_md5s(emulator, "runs/a")
    out = set()
    for name, md5s in live.items():
        side = name[:-len(".pt")] + ".json"
        if name.endswith(".pt") and side in live:
            rec = emulator.find(f"runs/a/{side}")
            said = json.loads(emulator.read_bytes(rec["id"]))
            if said["md5"] in md5s:
                out.add(name)
    return out


@pytest.mark.parametrize("how", ["truncated", "grown"])
def test_a_checkpoint_saved_again_while_sent_keeps_the_verified_one_before(
        emulator, penv, proxy, tmp_path, how):
    src, first, _ = pushed_then_saved(tmp_path)
    path = os.path.join(src, "epoch_002.pt")

    def save_again(status: int, headers: dict, body: bytes) -> Reply:
        # (as the upload's session opens: its bytes are read after this)
        with open(path, "r+b") as fh:
            if how == "truncated":
                fh.truncate(10)
            else:
                fh.seek(0, os.SEEK_END)
                fh.write(b"x" * 5000)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", save_again, times=1)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--jobs", "1")
    assert code == 0, err
    assert "epoch_002.json changed while the push ran" in err, err
    with open(path, "rb") as fh:
        now = fh.read()
    live = live_md5s(emulator, "runs/a")
    assert live == {**first, "epoch_002.pt": [md5(now)]}, live
    assert _verified(emulator) == {"epoch_001.pt"}
    # The trainer's sidecar for the bytes saved again: the next push sends it, and only then
    # does the pair before go.
    with open(os.path.join(src, "epoch_002.json"), "wb") as fh:
        fh.write(sidecar_json(2, now))
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--jobs", "1")
    assert code == 0, err
    assert set(live_md5s(emulator, "runs/a")) == {"epoch_002.pt", "epoch_002.json"}
    assert _verified(emulator) == {"epoch_002.pt"}
