"""trashin34: a directory DEST's trash lay in the store's root, DEST's parent (the store is
rooted at the nearest existing folder above DEST): ``push ./logs /nas/logs --delete`` and
``prune /nas/logs --use-trash`` moved their removals to ``/nas/.trash/logs/…``, ``push
./out ~/backup --delete`` to ``~/.trash/backup/…``: written outside the folder named
(attacksync34). The
trash is DEST's own now, ``DEST/.drivestage-trash``, a reserved name: no push sends it or
removes it, no pull of DEST takes it. (local32's test of the message's place is here too.)"""
from __future__ import annotations

import os

from _cli import run

TRASH = ".drivestage-trash"


def test_push_delete_trashes_inside_dest_and_nothing_beside_it(local_state, tmp_path):
    src, nas = tmp_path / "logs", tmp_path / "nas"
    dest = nas / "logs"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    dest.mkdir(parents=True)
    (dest / "old.txt").write_text("old\n")
    (dest / "sub").mkdir()
    (dest / "sub" / "gone.txt").write_text("gone\n")

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 0, err
    trash = dest / TRASH
    assert f"from {dest} that are not in SRC (to {trash})" in err, err
    assert (trash / "old.txt").read_text() == "old\n"
    assert (trash / "sub" / "gone.txt").read_text() == "gone\n"
    assert sorted(os.listdir(nas)) == ["logs"]          # nothing written beside DEST
    assert sorted(os.listdir(dest)) == [TRASH, "a.txt"]

    # The trash is no item of DEST: a second push sends nothing and removes nothing ...
    code, out, err = run("push", str(src), str(dest), "--delete")
    assert code == 0, err
    assert "removing" not in err, err
    assert (trash / "old.txt").read_text() == "old\n"
    # ... and a pull of DEST does not take it.
    copy = tmp_path / "copy"
    code, _, err = run("pull", str(dest), str(copy))
    assert code == 0, err
    assert sorted(p for p in os.listdir(copy / "logs") if p != ".drivestage") == ["a.txt"]


def test_prune_use_trash_trashes_inside_dest(local_state, tmp_path):
    src, nas = tmp_path / "logs", tmp_path / "nas"
    dest = nas / "logs"
    src.mkdir()
    nas.mkdir()
    (src / "epoch_001.pt").write_bytes(b"one" * 1000)
    code, _, err = run("push", str(src), str(dest))
    assert code == 0, err
    (src / "epoch_002.pt").write_bytes(b"two" * 1000)

    code, _, err = run("push", str(src), str(dest))
    assert code == 0, err

    code, _, err = run("prune", str(dest), "--keep-last", "1", "--use-trash")

    assert code == 0, err
    assert (dest / TRASH / "epoch_001.pt").read_bytes() == b"one" * 1000
    assert not (dest / "epoch_001.pt").exists()
    assert (dest / "epoch_002.pt").read_bytes() == b"two" * 1000
    assert sorted(os.listdir(nas)) == ["logs"]


def test_a_path_already_in_the_trash_is_deleted_for_good(tmp_path):
    from drivestage.localdir import LocalDirStore

    (tmp_path / "logs" / TRASH).mkdir(parents=True)
    (tmp_path / "logs" / TRASH / "x.pt").write_bytes(b"x")
    (tmp_path / "logs" / "y.pt").write_bytes(b"y")
    store = LocalDirStore(tmp_path, trash_in="logs")
    assert [e.name for e in store.list(store.resolve("logs"))] == ["y.pt"]
    store.delete(store.resolve(f"logs/{TRASH}/x.pt"), trash=True)
    assert os.listdir(tmp_path / "logs" / TRASH) == []
    store.delete(store.resolve("logs/y.pt"), trash=True)
    assert os.listdir(tmp_path / "logs" / TRASH) == ["y.pt"]
    assert store.trash_place() == str(tmp_path / "logs" / TRASH)
    assert store.quota().trash == 1
