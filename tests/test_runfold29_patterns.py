"""``include``, ``exclude`` and ``protect`` given to the Python API as one string
(runfold29): each was taken character by character (``include="*.zip"`` is ``*``, ``.``,
``z``...: every file), so ``push(..., include="*.zip", delete=True)`` trashed what the filter
was to leave, and ``protect="epoch_001.pt"`` protected nothing. A lone string is one pattern
(or name) now."""
from __future__ import annotations

from _envs import env_local_retries  # noqa: F401  (the env fixture)
from drivestage.mirror import Mirror
from drivestage.pruning import prune
from drivestage.retention import RetentionPolicy
from drivestage.upload_tree import push

from _drive_state import live_md5s


def test_push_delete_with_one_include_string_leaves_what_it_filters_out(emulator, env,
                                                                        tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "VOC.zip").write_bytes(b"zip")
    emulator.add_file("data/notes/readme.txt", b"read me\n")
    emulator.add_file("data/old.zip", b"old")

    result = push(str(src), "drive:data", include="*.zip", delete=True)

    assert result.deleted == ["old.zip"]
    assert set(live_md5s(emulator, "data")) == {"VOC.zip", "notes"}
    assert set(live_md5s(emulator, "data/notes")) == {"readme.txt"}


def test_a_mirror_with_one_exclude_string_sends_the_rest(emulator, env, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "train.log").write_text("log\n")
    (src / "results.csv").write_text("epoch\n")
    mirror = Mirror(str(src), "drive:logs", exclude="*.log")

    try:
        result = mirror.flush(60)
    finally:
        mirror.stop(60, flush=False)

    assert result is not None and result.uploaded == ["results.csv"]
    assert set(live_md5s(emulator, "logs")) == {"results.csv"}


def test_prune_with_one_protect_string_keeps_it(emulator, env):
    for epoch in (1, 2, 3):
        emulator.add_file(f"ck/epoch_{epoch:03d}.pt", bytes([epoch]) * 100)

    plan = prune("drive:ck", RetentionPolicy(keep_last=1), protect="epoch_001.pt")

    assert sorted(d.name for d in plan if not d.keep) == ["epoch_002.pt"]
    assert set(live_md5s(emulator, "ck")) == {"epoch_001.pt", "epoch_003.pt"}
