"""Attacks on retention (``prune``, a push's retention, ``mirror``): a second process acting
between a prune's plan and its deletions, a hostile server, a hostile user.

Through the real stack against the emulator; a second connection stands for another machine.
What is asserted is what users rely on: the exact files left on Drive (name -> md5s) and the
sidecar that vouches for each."""
from __future__ import annotations

import json
import threading


from _checkpoints import save
from _drive_state import live_md5s
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

FOLDER = "Models/logs"
T0 = 1764600000.0


def _connect(emulator):
    from drivestage.drive import connect

    return connect(api_root=emulator.url, token="test-token")


def _id(emu, name: str) -> str:
    return emu.find(f"{FOLDER}/{name}")["id"]


class _PausedAtDelete:
    """A real DriveStore whose first ``delete`` waits until :meth:`release` (``reached`` is
    set then): the moment between a prune's plan and its deletions."""

    def __init__(self, emulator):
        self._store = _connect(emulator)
        self.reached, self._go = threading.Event(), threading.Event()
        self.deletes = 0

    def __getattr__(self, attr):
        return getattr(self._store, attr)

    def _pause(self) -> None:
        self.deletes += 1
        if self.deletes == 1:
            self.reached.set()
            assert self._go.wait(30), "never released"

    def delete(self, entry, trash=False):
        self._pause()
        return self._store.delete(entry, trash=trash)

    def delete_many(self, entries, trash=False, **kw):  # (prune24: deletes in batches;
        self._pause()                                   # attack25: kept=, read with them)
        return self._store.delete_many(entries, trash=trash, **kw)

    def release(self) -> None:
        self._go.set()


def test_a_stale_prune_plan_never_deletes_a_sidecar_that_now_vouches_for_a_new_copy(
        emulator, drive_env, local_state, tmp_path):
    """Drive holds epochs 2, 3, 4 of a run. Machine B resumed it from epoch 2 and saved
    ``epoch_003.pt`` again (saved later: the run's real newest). ``prune --keep-last 1`` plans
    epoch 3's deletion (checkpoint and sidecar, by id); before it deletes, B pushes: the new
    copy, its sidecar updated in place (same id), the old copy removed. The prune must not
    then delete that sidecar: it vouches for B's new copy, the verified checkpoint saved last
    (a fresh prune keeps both)."""
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    a, b = tmp_path / "a", tmp_path / "b"
    for stem, epoch, when in (("epoch_002", 2, T0), ("epoch_003", 3, T0 + 60),
                              ("epoch_004", 4, T0 + 120)):
        save(str(a), stem, epoch, when, saved=when)
    push(str(a), FOLDER, store=_connect(emulator))
    resumed = save(str(b), "epoch_003", 3, T0 + 300, saved=T0 + 300)
    paused = _PausedAtDelete(emulator)
    result: list = []
    t = threading.Thread(target=lambda: result.append(
        prune(FOLDER, RetentionPolicy(keep_last=1), store=paused)))
    t.start()
    try:
        assert paused.reached.wait(30)
        sent = push(str(b), FOLDER, store=_connect(emulator))
        assert sorted(sent.uploaded) == ["epoch_003.json", "epoch_003.pt"]
    finally:
        paused.release()
        t.join(30)
    assert not t.is_alive() and result
    live = live_md5s(emulator, FOLDER)
    assert live["epoch_003.pt"] == resumed["epoch_003.pt"]
    assert live.get("epoch_003.json") == resumed["epoch_003.json"]
    said = json.loads(emulator.read_bytes(_id(emulator, "epoch_003.json")))["md5"]
    assert [said] == resumed["epoch_003.pt"]
    assert "epoch_002.pt" not in live and "epoch_002.json" not in live
    # What a fresh prune then decides: B's copy stays as the one saved last.
    again = prune(FOLDER, RetentionPolicy(keep_last=1), store=_connect(emulator))
    assert not again.to_delete


def test_prune_keeps_a_collaborators_checkpoints_it_may_not_remove_and_prunes_the_rest(
        emulator, drive_env, local_state, tmp_path):
    """A teammate with edit access pushed their run into my folder (My Drive): their files are
    theirs (they use none of my quota), and Drive lets me neither delete nor trash them (403
    insufficientFilePermissions). ``prune --keep-last 1`` failed on the first of them ("check
    that this account can access the file", which it can), and every push with retention and
    every mirror period failed there again, never pruning my own run. Now their files are
    kept (Drive says so in the listing) and mine are pruned."""
    from _cli import run
    from drivestage.upload_tree import push

    a, b = tmp_path / "a", tmp_path / "b"
    mine = {}
    for stem, epoch, when in (("epoch_001", 1, T0), ("epoch_002", 2, T0 + 60),
                              ("epoch_003", 3, T0 + 120)):
        mine = save(str(a), stem, epoch, when, saved=when)
    push(str(a), FOLDER, store=_connect(emulator))
    theirs: dict = {}
    for stem, epoch, when in (("epoch_010", 1, T0 - 600), ("epoch_011", 2, T0 - 500)):
        theirs.update(save(str(b), stem, epoch, when, run="teammate-run", saved=when))
        for suffix in (".pt", ".json"):
            fid = emulator.add_file(f"{FOLDER}/{stem}{suffix}",
                                    (b / f"{stem}{suffix}").read_bytes())
            # Older on Drive than my run: their run comes first in the plan's order.
            emulator.store.update(fid, owner="bob@example.com", shared_role="writer",
                                  modified=when)
    code, out, err = run("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert [r.split()[0] for r in out.splitlines() if "  epoch_010.pt  " in r] == ["keep"], out
    assert "another user's file (only its owner may delete it)" in out
    assert live_md5s(emulator, FOLDER) == {**mine, **theirs}
    # A push with retention (what every mirror period runs) gets past them too.
    newer = save(str(a), "epoch_004", 4, T0 + 180, saved=T0 + 180)
    code, _, err = run("push", str(a), f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == {**newer, **theirs}
