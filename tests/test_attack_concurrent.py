"""Attacks: two drivestage operations on the same Drive folder at the same time (two machines
pushing one run, a prune beside a push in flight, a training loop's CheckpointSync beside a
push), each stopped at a real moment (a request seen by the emulator, a file on Drive, a step
of the other operation reached).

"Another machine" in one process is a :class:`_Machine`: its own connection to the emulator
and its own place lock (pushes are serialised per machine only, see drivestage.locks), with a
gate that stops it at one step until the test lets it go. What is asserted is the exact set
of files left on Drive (name -> md5s) and that what a sidecar there vouches for is there."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time


from _checkpoints import md5, save, sidecar_json
from _cli import child_env, ok
from _drive_state import live_md5s
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

FOLDER = "Models/logs"
T0 = time.time() - 3600


def _live(emu) -> dict:
    return live_md5s(emu, FOLDER)




def _push_cmd(src, *args) -> list:
    return [sys.executable, "-m", "drivestage", "push", str(src), f"drive:{FOLDER}", *args]


def _vouched_ok(emu, ckpt: str, side: str) -> bool:
    """The sidecar ``side`` on Drive names the md5 of a copy of ``ckpt`` that is there."""
    top = emu.find(FOLDER)["id"]
    live = [f for f in emu.files() if not f["labels"]["trashed"]
            and any(p["id"] == top for p in f.get("parents") or [])]
    sides = [f for f in live if f["title"] == side]
    assert len(sides) == 1, sides
    said = json.loads(emu.read_bytes(sides[0]["id"]))["md5"]
    return said in {f.get("md5Checksum") for f in live if f["title"] == ckpt}


# ------------------------------------------------------------ 1. kills during retention

def test_a_push_killed_between_deleting_an_old_checkpoint_and_its_sidecar_leaves_no_orphan(
        emulator, drive_env, local_state, tmp_path):
    """Machine A's push --keep-last 1 retires epoch 3 after sending epoch 4, and is SIGKILLed
    after the first of the two deletions. Deleting the checkpoint first left its sidecar on
    Drive, vouching for bytes that are not there (deleting the sidecar first would leave a
    checkpoint no sidecar vouches for, kept for ever). The rerun retires that orphan
    (drivestage.orphans) and ends with epoch 4 and its sidecar only."""
    from _kill import sigkill_when

    src = tmp_path / "a"
    old = save(str(src), "epoch_003", 3, T0)
    ok("push", str(src), f"drive:{FOLDER}")
    assert _live(emulator) == old
    for name in old:
        os.remove(src / name)
    new = save(str(src), "epoch_004", 4, T0 + 60)
    # Every deletion waits a moment before it is done: the kill lands between the two.
    emulator.faults.latency(2.0, method="DELETE")
    cmd = _push_cmd(src, "--keep-last", "1")
    proc = subprocess.Popen(cmd, env=child_env(emulator), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    sigkill_when(proc, lambda: len(set(old) & set(_live(emulator))) == 1,
                 "the push never deleted one of epoch 3's files")
    emulator.faults.clear()
    rerun = subprocess.run(cmd, env=child_env(emulator), capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert _live(emulator) == new


# ------------------------------------------------------------ 1. two machines, one name

class _Machine:
    """Another machine on the same Drive: its own connection and place lock, and a gate
    that stops it at its first ``op`` of ``name`` (``"upload"``: before sending it,
    ``"uploaded"``: once it is verified there, ``"delete"``: before deleting it) until
    :meth:`release` (``reached`` is set when it waits there)."""

    def __init__(self, emulator, tag: str, op: str = "", name: str = ""):
        from drivestage.drive import connect

        self._store = connect(api_root=emulator.url, token="test-token")
        self.tag, self.op, self.name = tag, op, name
        self.reached, self._go = threading.Event(), threading.Event()
        self.error: list = []

    def __getattr__(self, attr):
        return getattr(self._store, attr)

    def place(self, path) -> str:
        return f"{self.tag}|{self._store.place(path)}"

    def lineage(self, folder):
        return [(f"{self.tag}|{p}", w) for p, w in self._store.lineage(folder)]

    def _gate(self, op: str, name: str) -> None:
        if op == self.op and name == self.name and not self.reached.is_set():
            self.reached.set()
            assert self._go.wait(30), f"{self.tag} was never released"

    def upload(self, local_path, folder, name, **kw):
        self._gate("upload", name)
        entry = self._store.upload(local_path, folder, name, **kw)
        self._gate("uploaded", name)
        return entry

    def delete(self, entry, **kw):
        self._gate("delete", entry.name)
        return self._store.delete(entry, **kw)

    def release(self) -> None:
        self._go.set()

    def push(self, src, *args, **kw) -> threading.Thread:
        from drivestage.upload_tree import push

        def run():
            try:
                push(str(src), FOLDER, *args, store=self, **kw)
            except BaseException as exc:  # noqa: BLE001 (reported by the test)
                self.error.append(exc)
                self.reached.set()
        t = threading.Thread(target=run, name=f"machine-{self.tag}")
        t.start()
        return t


def _save_last(src, epoch: int, when: float) -> dict:
    """The trainer's ``last.pt`` and its sidecar ``last.json`` for ``epoch``."""
    return save(str(src), "last", epoch, when)


def test_two_machines_replacing_last_pt_at_once_leave_a_copy_their_sidecar_vouches_for(
        emulator, drive_env, local_state, tmp_path):
    """Machines A (epoch 4) and B (epoch 5) of one run push ``last.pt`` over epoch 3's at
    once. A sends its copy, then (slower) its sidecar; B lists after A's copy arrived, sends
    its own copy and sidecar, A's sidecar replaces B's, and B deletes the copies its listing
    had (epoch 3's and A's). B decided from the sidecar it had sent itself, so it
    deleted the copy the sidecar on Drive now vouched for: Drive held B's bytes under a
    sidecar naming A's, no verified checkpoint at all. Whoever wrote the sidecar last, a
    copy it vouches for stays (and at most the two new copies)."""
    base = _save_last(tmp_path / "base", 3, T0)
    ok("push", str(tmp_path / "base"), f"drive:{FOLDER}")
    a_files = _save_last(tmp_path / "a", 4, T0 + 60)
    b_files = _save_last(tmp_path / "b", 5, T0 + 120)
    a = _Machine(emulator, "A", "upload", "last.json")
    b = _Machine(emulator, "B", "uploaded", "last.json")
    ta = a.push(tmp_path / "a")
    assert a.reached.wait(30) and not a.error, a.error     # A's copy is on Drive
    assert sorted(_live(emulator)["last.pt"]) == sorted(base["last.pt"] + a_files["last.pt"])
    tb = b.push(tmp_path / "b")
    assert b.reached.wait(30) and not b.error, b.error     # B's sidecar is on Drive
    assert _live(emulator)["last.json"] == b_files["last.json"]
    a.release()
    ta.join(30)
    assert not ta.is_alive() and not a.error, a.error
    b.release()
    tb.join(30)
    assert not tb.is_alive() and not b.error, b.error
    live = _live(emulator)
    assert len(live["last.pt"]) <= 2, live
    assert _vouched_ok(emulator, "last.pt", "last.json"), live


# ------------------------------------------------------------ 2. prune beside a push

def test_prune_while_a_push_is_between_a_new_checkpoint_and_its_sidecar_keeps_both(
        emulator, drive_env, local_state, tmp_path):
    """(Held.) ``prune --keep-last 1`` runs while a push has sent epoch 5 and not yet its
    sidecar: epoch 4 (the only verified one) and epoch 5 both stay; the push then ends with
    epoch 5 and its sidecar only."""
    src = tmp_path / "a"
    old = save(str(src), "epoch_004", 4, T0)
    ok("push", str(src), f"drive:{FOLDER}")
    new = save(str(src), "epoch_005", 5, T0 + 60)
    a = _Machine(emulator, "A", "upload", "epoch_005.json")
    ta = a.push(src, _policy(keep_last=1))
    assert a.reached.wait(30) and not a.error, a.error
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _live(emulator) == {**old, "epoch_005.pt": new["epoch_005.pt"]}
    a.release()
    ta.join(30)
    assert not ta.is_alive() and not a.error, a.error
    assert _live(emulator) == new


def _policy(**kw):
    from drivestage.retention import RetentionPolicy

    return RetentionPolicy(**kw)
