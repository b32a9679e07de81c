"""What drivestage says when its record of this machine's run folders (``run-folders.json``
in the state folder) cannot be read (attackds30): cut short (a crash, a hand edit) or holding
another JSON type, it was read as no record at all. ``push ./runs drive:runs --delete`` then
trashed the checkpoints a training run kept on Drive that ``train.keep_local`` had removed
from the disk, and the next run's push wrote the file anew with only its own record: every
other run's was lost."""
from __future__ import annotations

import logging
import os

import pytest

from _cli import run
from _drive_state import live_md5s
from _messages import error_line as error
from _messages import renders, shown
from _run_pushes import push_three_epochs
from test_attackds29_run_folders import env  # noqa: F401  (a fixture)

REFUSED = "it records which store folders are training runs' folders, and without it --delete"


def _run_folder(emulator, tmp_path, name: str) -> tuple:
    """``runs/<name>`` pushed by its run (keep_last 2, three epochs); ``(runs, what Drive
    keeps of it)``; the epoch Drive keeps that is not the newest removed from the disk, as
    ``train.keep_local`` does."""
    runs = tmp_path / "runs"
    run_dir = runs / name
    push_three_epochs(run_dir, f"drive:runs/{name}")
    for kept in ("epoch_002.pt", "epoch_002.json"):
        os.unlink(run_dir / kept)
    return runs, live_md5s(emulator, f"runs/{name}")


@renders(REFUSED)
@pytest.mark.parametrize("damage", ["truncated", "a list"])
def test_delete_is_refused_while_the_run_folder_records_cannot_be_read(emulator, env, tmp_path,
                                                                       caplog, damage):
    runs, kept = _run_folder(emulator, tmp_path, "exp1")
    records = env / "state" / "run-folders.json"
    text = records.read_bytes()
    records.write_bytes(text[:len(text) // 2] if damage == "truncated" else b"[]")
    damaged = records.read_bytes()
    with caplog.at_level(logging.WARNING):   # another run's push: the file is left as it is
        _run_folder(emulator, tmp_path, "exp2")
    assert records.read_bytes() == damaged
    assert any("cannot record drive:runs/exp2 as a run folder in" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]

    code, _, err = run("push", str(runs), "drive:runs", "--delete")

    assert code == 1
    why = "a JSON list, not an object" if damage == "a list" else "not JSON: "
    assert error(err).startswith(f"Error: cannot read {records} ({why}"), err
    assert error(err).endswith(
        f"): {REFUSED} could remove the checkpoints a run keeps there; nothing was sent or "
        "deleted. Repair the file, or move it away (each run records its folder again at its "
        "next push), then run again"), err
    shown(REFUSED, err)
    assert live_md5s(emulator, "runs/exp1") == kept


# ------------------------------------------------- Colab's mount path, nothing mounted there

UNMOUNTED = ("is under …, where Colab mounts Google Drive, but Drive is not mounted there (a "
             "folder made there stays on this machine); write … instead: drivestage needs no "
             "mount")


@renders(UNMOUNTED)
def test_a_pull_into_colabs_mount_path_with_nothing_mounted_is_refused(local_state, tmp_path,
                                                                       monkeypatch):
    """`pull … /content/drive/MyDrive/data` where `drive.mount()` was not run staged the
    files on local disk (with a warning that DEST is in the Drive mount, which it was not),
    and a later `drive.mount()` refuses the folder. Through the notebook's usual link
    (`!ln -s /content/drive/MyDrive /mydrive`, dangling without the mount) a push said
    "/mydrive is a file, not a folder; … remove the file" and a pull "No such file or
    directory"."""
    import drivestage.localfs

    content = tmp_path / "content"
    monkeypatch.setattr(drivestage.localfs, "COLAB_CONTENT", str(content))
    (content / "drive").mkdir(parents=True)
    link = tmp_path / "mydrive"
    os.symlink(content / "drive" / "MyDrive", link)
    src = tmp_path / "set.bin"
    src.write_bytes(b"data")
    for dest in (content / "drive" / "MyDrive" / "data", link / "data"):
        code, _, err = run("pull", str(src), str(dest))
        assert code == 2
        assert error(err) == (
            f"Error: DEST {dest} is under {content / 'drive'}, where Colab mounts Google "
            "Drive, but Drive is not mounted there (a folder made there stays on this "
            "machine); write a folder on local disk (e.g. /content/data) instead: drivestage "
            "needs no mount"), err
        shown(UNMOUNTED, err)
    (tmp_path / "logs").mkdir()
    code, _, err = run("push", str(tmp_path / "logs"), str(link / "logs"))
    assert (code, error(err)) == (2, f"Error: {link / 'logs'} is under {content / 'drive'}, "
                                     "where Colab mounts Google Drive, but Drive is not mounted "
                                     "there (a folder made there stays on this machine); write "
                                     "drive:logs instead: drivestage needs no mount"), err
    assert os.listdir(content / "drive") == []
