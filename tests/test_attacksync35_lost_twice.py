"""A server that answers a checkpoint's upload 200 and keeps nothing, again when it is sent
once more (attacksync35)."""
from __future__ import annotations

import json

from _checkpoints import md5, save
from _cli import run
from _drive_state import live_md5s
from _liar import kept_nothing_of
from _liar import liar_env  # noqa: F401  (fixtures)

T0 = 1764600000.0


def _vouched(emulator, folder: str) -> dict:
    """name -> whether Drive's copy of each checkpoint is the one its sidecar names."""
    live = live_md5s(emulator, folder)
    out = {}
    for f in emulator.files():
        if f["labels"]["trashed"] or f["title"] != "last.json":
            continue
        said = json.loads(emulator.read_bytes(f["id"]))["md5"]
        out["last.pt"] = said in live.get("last.pt", [])
    return out


def test_a_checkpoint_lost_twice_leaves_the_verified_pair_before_it(emulator, proxy,
                                                                     liar_env, tmp_path):
    """``push run drive:runs/exp1``: last.pt changed; Drive (or a proxy, a look-alike)
    answered its upload 200 and kept nothing, and again when the push sent it once more. The
    sidecar had gone in between: Drive held the old last.pt beside a last.json naming bytes it
    never kept, no verified checkpoint, exit 0. Now the push says it failed (exit 1) and Drive
    keeps its verified pair: the old last.pt and a sidecar vouching for it."""
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    code, _, err = run("push", str(src), "drive:runs/exp1")
    assert code == 0, err
    before = live_md5s(emulator, "runs/exp1")
    save(str(src), "last", 2, T0 + 60)
    mutate, lost = kept_nothing_of(emulator, "last.pt")
    proxy.on("PUT", r"upload_id=", mutate)
    proxy.on("POST", r"uploadType=", mutate)

    code, _, err = run("push", str(src), "drive:runs/exp1")

    assert lost, err
    assert _vouched(emulator, "runs/exp1") == {"last.pt": True}, (code, err)
    assert live_md5s(emulator, "runs/exp1") == before
    assert err.splitlines()[-1] == (
        "Error: drive:runs/exp1/last.pt was answered as stored and then not held, twice (a "
        "server or proxy that does not keep what it answers for, or another client deleting "
        "it): its sidecar was not sent, and the checkpoint it replaces stays; run the push "
        "again once that is fixed")
    assert code == 1, err


def test_a_checkpoint_lost_once_is_sent_again_and_its_old_copy_goes(emulator, proxy,
                                                                     liar_env, tmp_path):
    """The same server losing the new last.pt once: sent again before its sidecar, the push
    ends with the new pair alone. The old copy's removal looked for the copy first sent (gone)
    and said it "could not read its sidecar last.json on the store again (stat …/last.pt: not
    found …)": the old copy stayed beside the new one, a duplicate until the next push."""
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    code, _, err = run("push", str(src), "drive:runs/exp1")
    assert code == 0, err
    save(str(src), "last", 2, T0 + 60)
    mutate, lost = kept_nothing_of(emulator, "last.pt")
    proxy.on("PUT", r"upload_id=", mutate, times=1)
    proxy.on("POST", r"uploadType=", mutate, times=1)

    code, _, err = run("push", str(src), "drive:runs/exp1")

    assert lost and code == 0, err
    assert [line for line in err.splitlines() if line.startswith("WARNING")] == [
        "WARNING drivestage.upload_tree: last.pt went from the store after it was sent, "
        "before its sidecar was sent (another push --delete?); sending it again"]
    assert live_md5s(emulator, "runs/exp1")["last.pt"] == [md5((src / "last.pt").read_bytes())]
    assert _vouched(emulator, "runs/exp1") == {"last.pt": True}
