"""Attacks on the rule that retires an orphan sidecar: a checkpoint's ``.json`` left on Drive
without its checkpoint (a push, prune or CheckpointSync killed between the two deletions of a
retired checkpoint, :mod:`drivestage.orphans`). Each attack is a sidecar that may still be
needed, or a JSON that is no sidecar: none of them may go.

Through the real stack against the emulator (the CLI in-process, the library with a second
connection as another machine); what is asserted is the exact set of files left on Drive
(name -> md5s)."""
from __future__ import annotations

import json
import threading


from _checkpoints import RUN, md5, save
from _cli import ok, run
from _drive_state import live_md5s
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

FOLDER = "Models/logs"
T0 = 1764600000.0


def _live(emu) -> dict:
    return live_md5s(emu, FOLDER)


def _id(emu, name: str) -> str:
    return emu.find(f"{FOLDER}/{name}")["id"]


def _pushed(src, stem: str, epoch, when: float, run_id=RUN) -> dict:
    """``stem.pt`` and its sidecar saved in ``src`` and pushed (no policy)."""
    files = save(str(src), stem, epoch, when, run=run_id)
    ok("push", str(src), f"drive:{FOLDER}")
    return files


def _orphaned(emulator, tmp_path, *, run3=RUN, epoch3=3) -> tuple[dict, dict]:
    """Epoch 3 pushed, then epoch 4 (of ``RUN``), then epoch 3's checkpoint deleted on Drive
    as a killed retention leaves it: ``epoch_003.json`` alone. Returns (epoch 3's sidecar,
    epoch 4's two files) as Drive holds them."""
    src = tmp_path / "a"
    old = _pushed(src, "epoch_003", epoch3, T0, run3)
    new = _pushed(src, "epoch_004", 4, T0 + 60)
    emulator.store.delete(_id(emulator, "epoch_003.pt"))
    return {"epoch_003.json": old["epoch_003.json"]}, new


def _row(out: str, name: str) -> tuple[str, str]:
    """The action and the reason of ``name``'s line of the plan's table."""
    rows = [line for line in out.splitlines() if f"  {name}  " in line]
    assert len(rows) == 1, out
    return rows[0].split()[0], rows[0].split(f"  {name}  ", 1)[1].strip()


# ------------------------------------------------------------ retired, and only as planned

def test_prune_dry_run_prints_the_orphans_retirement_then_prune_deletes_it(
        emulator, drive_env, local_state, tmp_path):
    orphan, new = _orphaned(emulator, tmp_path)
    before = _live(emulator)
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1", "--dry-run")
    action, reason = _row(out, "epoch_003.json")
    assert action == "delete"
    assert reason == ("orphan sidecar: epoch_003.pt is not here, and epoch_004.pt of its run "
                      "is further on and verified")
    assert "1 to delete" in out
    assert _live(emulator) == before
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _row(out, "epoch_003.json")[0] == "delete"
    assert _live(emulator) == new


def test_no_policy_never_retires_an_orphan(emulator, drive_env, local_state, tmp_path):
    """A push with no retention option deletes nothing, orphans included."""
    orphan, new = _orphaned(emulator, tmp_path)
    for name in ("epoch_003.pt", "epoch_003.json"):
        (tmp_path / "a" / name).unlink()
    ok("push", str(tmp_path / "a"), f"drive:{FOLDER}")
    assert _live(emulator) == {**orphan, **new}


# ------------------------------------------------------------ JSONs that are not sidecars

def test_jsons_that_are_no_managed_sidecar_are_never_touched(emulator, drive_env,
                                                            local_state, tmp_path):
    """A user's config.json and results.json, a sidecar of a name the policy does not manage
    (last.json, best.json beside no checkpoint) and an ``epoch_002.json`` that vouches for no
    bytes (no md5): all older than a verified epoch 4 of the run, all kept."""
    src = tmp_path / "a"
    dead = md5(b"gone")
    sidecar_like = {"format": 2, "epoch": 1, "epoch_iteration": 0, "run": RUN, "md5": dead,
                    "size": 4}
    seeded = {"config.json": json.dumps({"lr": 0.01}).encode(),
              "results.json": json.dumps({"epoch": 2, "map50": 0.3}).encode(),
              "last.json": json.dumps(sidecar_like).encode(),
              "best.json": json.dumps(sidecar_like).encode(),
              "epoch_002.json": json.dumps({"epoch": 2, "run": RUN, "loss": 1.5}).encode()}
    for name, body in seeded.items():
        emulator.add_file(f"{FOLDER}/{name}", body)
    new = _pushed(src, "epoch_004", 4, T0 + 60)
    expected = {**{n: [md5(b)] for n, b in seeded.items()}, **new}
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    ok("push", str(src), f"drive:{FOLDER}", "--keep-last", "1")
    assert _live(emulator) == expected


# ------------------------------------------------------------ sidecars that may be needed

def test_the_orphan_of_a_run_with_no_newer_verified_checkpoint_is_kept(
        emulator, drive_env, local_state, tmp_path):
    """Epoch 3's sidecar names another run than epoch 4's: the only record of that run's state
    on Drive stays, even when --keep-runs 1 drops that run."""
    orphan, new = _orphaned(emulator, tmp_path, run3="20261130-101010-aaaa")
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    ok("prune", f"drive:{FOLDER}", "--keep-runs", "1")
    assert _live(emulator) == {**orphan, **new}


def test_an_orphan_further_on_than_its_runs_verified_checkpoints_is_kept(
        emulator, drive_env, local_state, tmp_path):
    """``epoch_005.json`` without its checkpoint (another machine's uploader sent the small
    file first and the checkpoint is on its way) is further on than the verified epoch 4,
    even one that arrived after it."""
    ahead = save(str(tmp_path / "b"), "epoch_005", 5, T0 + 120)
    emulator.add_file(f"{FOLDER}/epoch_005.json", (tmp_path / "b" / "epoch_005.json").read_bytes())
    new = _pushed(tmp_path / "a", "epoch_004", 4, T0 + 60)
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _live(emulator) == {"epoch_005.json": ahead["epoch_005.json"], **new}


def test_an_orphan_that_arrived_after_its_runs_newer_checkpoint_is_kept(
        emulator, drive_env, local_state, tmp_path):
    """Epoch 3's sidecar reached Drive after epoch 4 did (Drive's own modified times): its
    checkpoint may be on its way from a machine behind, so it stays."""
    src = tmp_path / "a"
    new = _pushed(src, "epoch_004", 4, T0 + 60)
    late = save(str(tmp_path / "b"), "epoch_003", 3, T0)
    emulator.add_file(f"{FOLDER}/epoch_003.json", (tmp_path / "b" / "epoch_003.json").read_bytes())
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _live(emulator) == {"epoch_003.json": late["epoch_003.json"], **new}


def test_an_orphan_whose_checkpoint_the_user_renamed_in_the_folder_is_kept(
        emulator, drive_env, local_state, tmp_path):
    """The user renamed epoch_003.pt to mine.pt on Drive (beside an unrelated keep_me.pt):
    a file of the folder holds the bytes the orphan names, so the sidecar stays."""
    orphan, new = _orphaned(emulator, tmp_path)
    data = (tmp_path / "a" / "epoch_003.pt").read_bytes()
    emulator.add_file(f"{FOLDER}/keep_me.pt", b"x")
    emulator.add_file(f"{FOLDER}/mine.pt", data)
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _live(emulator) == {**orphan, **new, "keep_me.pt": [md5(b"x")],
                               "mine.pt": [md5(data)]}


def test_a_protected_checkpoints_orphan_is_kept(emulator, drive_env, local_state, tmp_path):
    orphan, new = _orphaned(emulator, tmp_path)
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1", "--protect", "epoch_003.pt")
    assert _row(out, "epoch_003.json")[0] == "keep"
    assert _live(emulator) == {**orphan, **new}


def test_an_orphan_kept_as_the_best_by_its_metric_is_kept(emulator, drive_env, local_state,
                                                         tmp_path):
    """Its checkpoint would be the best one: it would stay, so its sidecar does."""
    src = tmp_path / "a"
    for stem, epoch, score in (("epoch_003", 3, 0.9), ("epoch_004", 4, 0.1)):
        save(str(src), stem, epoch, T0 + epoch)
        side = json.loads((src / f"{stem}.json").read_bytes())
        side["metrics"] = {"map50": score}
        (src / f"{stem}.json").write_bytes(json.dumps(side).encode())
        ok("push", str(src), f"drive:{FOLDER}")
    emulator.store.delete(_id(emulator, "epoch_003.pt"))
    before = _live(emulator)
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1", "--keep-best", "1", "--metric", "map50")
    assert _live(emulator) == before
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert "epoch_003.json" not in _live(emulator)


# ------------------------------------------------------------ another machine, same name

class _Paused:
    """A store whose second listing (the re-check before an orphan is retired) waits until
    :meth:`release`; ``reached`` is set when it waits there."""

    def __init__(self, emulator):
        from drivestage.drive import connect

        self._store = connect(api_root=emulator.url, token="test-token")
        self.reached, self._go = threading.Event(), threading.Event()
        self.listings = 0

    def __getattr__(self, attr):
        return getattr(self._store, attr)

    def list(self, folder):
        self.listings += 1
        if self.listings == 2:
            self.reached.set()
            assert self._go.wait(30), "never released"
        return self._store.list(folder)

    def release(self) -> None:
        self._go.set()


def test_a_checkpoint_re_uploaded_under_the_orphans_name_while_prune_plans_keeps_its_sidecar(
        emulator, drive_env, local_state, tmp_path):
    """Prune plans the orphan ``epoch_003.json``'s retirement; before it deletes, machine B (it
    still has epoch 3 and its sidecar) pushes ``epoch_003.pt`` again, and leaves the sidecar
    as it is (same bytes). The prune then finds the checkpoint back and keeps the sidecar
    that vouches for it."""
    from drivestage.drive import connect
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    orphan, new = _orphaned(emulator, tmp_path)
    store = _Paused(emulator)
    result: list = []
    t = threading.Thread(target=lambda: result.append(
        prune(FOLDER, RetentionPolicy(keep_last=1), store=store)))
    t.start()
    try:
        assert store.reached.wait(30)
        back = push(str(tmp_path / "a"), FOLDER, store=connect(api_root=emulator.url,
                                                               token="test-token"))
        assert back.uploaded == ["epoch_003.pt"]
    finally:
        store.release()
        t.join(30)
    assert [d.name for d in result[0].to_delete] == ["epoch_003.json"]
    live = _live(emulator)
    assert live["epoch_003.json"] == orphan["epoch_003.json"]
    said = json.loads(emulator.read_bytes(_id(emulator, "epoch_003.json")))["md5"]
    assert live["epoch_003.pt"] == [said]


def test_a_push_retires_an_orphan_and_says_so(emulator, drive_env, local_state, tmp_path):
    orphan, new = _orphaned(emulator, tmp_path)
    for name in ("epoch_003.pt", "epoch_003.json"):
        (tmp_path / "a" / name).unlink()
    code, out, err = run("push", str(tmp_path / "a"), f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert _live(emulator) == new


def test_a_checkpoint_moved_to_another_folder_is_untouched_and_its_old_sidecar_goes_to_the_trash(
        emulator, drive_env, local_state, tmp_path):
    """The user moved epoch_003.pt into Models/keep and left its sidecar: no rule of drivestage
    reads a sidecar beside another folder's checkpoint, so the superseded one goes like any
    other deletion (here with --use-trash: restorable), and the moved checkpoint stays."""
    orphan, new = _orphaned(emulator, tmp_path)
    data = (tmp_path / "a" / "epoch_003.pt").read_bytes()
    emulator.add_file("Models/keep/epoch_003.pt", data)
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1", "--use-trash")
    assert _live(emulator) == new
    assert live_md5s(emulator, "Models/keep") == {"epoch_003.pt": [md5(data)]}
    gone = [f for f in emulator.files() if f["title"] == "epoch_003.json"]
    assert [f["labels"]["trashed"] for f in gone] == [True]


def test_a_legacy_sidecar_orphan_is_retired_too(emulator, drive_env, local_state, tmp_path):
    """drivestage 0.1.0's ``epoch_003.pt.json`` left without its checkpoint."""
    side = json.dumps({"epoch": 3, "run": RUN, "md5": md5(b"gone"), "size": 4}).encode()
    emulator.add_file(f"{FOLDER}/epoch_003.pt.json", side)
    new = _pushed(tmp_path / "a", "epoch_004", 4, T0 + 60)
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _row(out, "epoch_003.pt.json")[0] == "delete"
    assert _live(emulator) == new


def test_prune_of_a_plain_directory_retires_an_orphan_by_its_files_mtimes(local_state, tmp_path):
    """A Drive mount or a NAS folder: the same rule, the files' mtimes standing for Drive's."""
    import os

    dest = tmp_path / "mount"
    save(str(dest), "epoch_003", 3, T0)
    save(str(dest), "epoch_004", 4, T0 + 60)
    os.remove(dest / "epoch_003.pt")
    ok("prune", str(dest), "--keep-last", "1")
    assert sorted(os.listdir(dest)) == ["epoch_004.json", "epoch_004.pt"]
    save(str(dest), "epoch_002", 2, T0 + 120)  # its sidecar written after epoch 4: kept
    os.remove(dest / "epoch_002.pt")
    ok("prune", str(dest), "--keep-last", "1")
    assert sorted(os.listdir(dest)) == ["epoch_002.json", "epoch_004.json", "epoch_004.pt"]
