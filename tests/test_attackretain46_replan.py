"""attackretain46: the re-plan after a checkpoint saved again while sent (attackpush45), or
a file gone before it was sent, saw the files the first plan did not send (deleted anyway by
the policy: ``skipped_by_policy``) as if they were on the store. A local pair the policy had
skipped (epoch_002) became the re-plan's "newest verified" in place of the store's only
verified pair (epoch_001), which was deleted: Drive was left with one checkpoint no sidecar
vouches for, exit 0."""
from __future__ import annotations

import os

import pytest

from _checkpoints import md5, pushed_then_saved, save, sidecar_json
from _cli import run
from _drive_state import live_md5s
from _proxy import Reply
from test_attackpush45_resaved import _verified


@pytest.mark.parametrize("how", ["saved again", "sidecar gone"])
def test_a_replan_keeps_the_stores_verified_pair_over_a_local_one_never_sent(
        emulator, penv, proxy, tmp_path, how):
    src = str(tmp_path / "run")
    first = save(src, "epoch_001", 1, 1000.0)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1")
    assert code == 0, err
    # The trainer's own retention keeps the newest two locally; epoch_002 is not sent
    # (the policy deletes it anyway), epoch_003 is, and is saved again while it goes.
    for name in ("epoch_001.pt", "epoch_001.json"):
        os.remove(os.path.join(src, name))
    save(src, "epoch_002", 2, 2000.0)
    save(src, "epoch_003", 3, 3000.0)
    path = os.path.join(src, "epoch_003.pt")

    def save_again(status: int, headers: dict, body: bytes) -> Reply:
        if how == "saved again":
            with open(path, "ab") as fh:
                fh.write(b"x" * 5000)
        else:   # (the trainer's own retention took the pair's sidecar: a file gone)
            os.remove(os.path.join(src, "epoch_003.json"))
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", save_again, times=1)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--jobs", "1")
    assert code == 0, err
    if how == "saved again":
        assert "epoch_003.json changed while the push ran" in err, err
    live = live_md5s(emulator, "runs/a")
    assert {n: v for n, v in live.items() if n.startswith("epoch_001")} == first, live
    assert _verified(emulator) == {"epoch_001.pt"}


def test_a_replan_over_max_bytes_says_so_and_keeps_the_verified_pair(
        emulator, penv, proxy, tmp_path):
    """The verified pair the re-plan keeps may not fit --max-bytes beside the checkpoint sent
    (grown as it was saved again): kept all the same, exit 0, and the push says the folder is
    over its budget until the next push (it was silent)."""
    src, first, _ = pushed_then_saved(tmp_path)
    path = os.path.join(src, "epoch_002.pt")

    def save_again(status: int, headers: dict, body: bytes) -> Reply:
        with open(path, "ab") as fh:
            fh.write(b"x" * 5000)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", save_again, times=1)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--max-bytes", "10000",
                       "--jobs", "1")
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if "drive:runs/a holds" in ln]
    assert lines == ["WARNING drivestage.upload_tree: drive:runs/a holds 10.9 KiB of "
                     "checkpoints, over the 9.8 KiB budget, until the next push: the newest "
                     "verified checkpoint stays until what replaces it is sent with its "
                     "sidecar"], err
    live = live_md5s(emulator, "runs/a")
    assert {n: v for n, v in live.items() if n.startswith("epoch_001")} == first, live
    assert _verified(emulator) == {"epoch_001.pt"}


def test_a_checkpoint_grown_as_it_was_sent_counts_at_its_size_on_drive_for_max_bytes(
        emulator, penv, proxy, tmp_path):
    """Saved again (grown) as it was sent, its sidecar with it: the plan before the uploads
    counted the size walked, and Drive stayed over --max-bytes until the next push, with no
    line. The plan is made again at the size sent: the oldest pair goes for the budget."""
    src = str(tmp_path / "run")
    save(src, "epoch_001", 1, 1000.0)
    code, _, err = run("push", src, "drive:runs/a", "--max-bytes", "10000")
    assert code == 0, err
    save(src, "epoch_002", 2, 2000.0)
    path = os.path.join(src, "epoch_002.pt")

    def save_again(status: int, headers: dict, body: bytes) -> Reply:
        with open(path, "ab") as fh:
            fh.write(b"x" * 5000)
        with open(path, "rb") as fh:
            now = fh.read()
        with open(os.path.join(src, "epoch_002.json"), "wb") as fh:
            fh.write(sidecar_json(2, now))
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", save_again, times=1)
    code, _, err = run("push", src, "drive:runs/a", "--max-bytes", "10000", "--jobs", "1")
    assert code == 0, err
    with open(path, "rb") as fh:
        now = fh.read()
    assert live_md5s(emulator, "runs/a") == {"epoch_002.pt": [md5(now)],
                                             "epoch_002.json": [md5(sidecar_json(2, now))]}
    assert _verified(emulator) == {"epoch_002.pt"}
