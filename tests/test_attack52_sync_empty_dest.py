"""attack52: ``CheckpointSync("", ...)`` or ``push(src, "")`` from Python: the destination an
unset variable left empty (``os.environ.get("DRIVE_LOGS", "")``).

README: "Every call raises a ``drivestage.errors.DriveStageError`` with a one-line message when
it cannot do what it says". An empty destination was taken as a local folder, the working
one: the loop's checkpoints were copied into it (with ``.drivestage/run-folder``), and the
retention policy pruned the checkpoint-named files already there, the user's own
``epoch_010.pt`` and ``epoch_011.pt`` deleted (the command line refuses an empty DEST:
attackcli39). Now a usage error before anything is written."""
from __future__ import annotations

import pytest

GIVE = "(an unset variable?); give a drive: path, a Drive link or a local folder"


def _mine(folder) -> dict:
    """The user's own checkpoint-named files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for epoch in (10, 11, 12):
        (folder / f"epoch_{epoch:03d}.pt").write_text(f"mine {epoch}")
    return {p.name: p.read_text() for p in folder.iterdir()}


def _listing(folder) -> dict:
    return {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}


def test_checkpoint_sync_refuses_an_empty_destination(local_state, tmp_path, monkeypatch):
    """On main 8704ac72 the sync started; two saves with keep_last=1 deleted epoch_010.pt and
    epoch_011.pt from the working folder and left epoch_002.pt/.json there."""
    from drivestage.errors import UsageError
    from drivestage.hooks import CheckpointSync
    from drivestage.retention import RetentionPolicy

    cwd = tmp_path / "work"
    before = _mine(cwd)
    monkeypatch.chdir(cwd)
    sync = None
    with pytest.raises(UsageError) as raised:
        sync = CheckpointSync("", RetentionPolicy(keep_last=1), local_dir="run")
        for epoch in (1, 2):
            (cwd / "run" / f"epoch_{epoch:03d}.pt").write_bytes(b"x" * epoch)
            sync.on_save(f"run/epoch_{epoch:03d}.pt", epoch, {})
        sync.on_train_end()
    assert str(raised.value) == f"CheckpointSync's dest is empty {GIVE}"
    assert sync is None
    assert _listing(cwd) == before
    assert not (cwd / ".drivestage").exists()


def test_push_refuses_an_empty_destination(local_state, tmp_path, monkeypatch):
    """On main 8704ac72 ``push(src, "", policy)`` pushed into the working folder and pruned the
    user's checkpoints there (exit 0 as a call)."""
    from drivestage.errors import UsageError
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    cwd = tmp_path / "work"
    before = _mine(cwd)
    src = tmp_path / "src"
    src.mkdir()
    (src / "epoch_001.pt").write_text("new")
    monkeypatch.chdir(cwd)
    with pytest.raises(UsageError) as raised:
        push(str(src), "", RetentionPolicy(keep_last=1))
    assert str(raised.value) == f"The path is empty {GIVE}"
    assert _listing(cwd) == before
