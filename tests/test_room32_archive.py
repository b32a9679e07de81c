"""room32: the start's "not enough free disk space … for the checkpoint of epoch …" line
names the dataset archive that ``data.drive_zip``'s pull kept in ``data.root`` beside its
members (``data.keep_archive``, the default) when it lies on the run folder's disk: on a
20 GB ``/kaggle/working`` a VOC archive is 2 GB the run could have, and the line listed
only the checkpoint remedies (attackt31's idea)."""
from __future__ import annotations

import os

import drivestage
from _archives import a_fixed_zip as a_zip
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from drivestage.sizes import format_size
from trainer import room

MiB = 1 << 20
DATA = {"ds/a.txt": b"alpha" * 1000, "ds/b.txt": b"bravo"}


def _config(tiny_config, root, out_dir, **more):
    from trainer.config import load_config

    return load_config(tiny_config(**{"data.drive_zip": "drive:d/set.zip", "data.root": str(root),
                                      "train.out_dir": str(out_dir), "train.epochs": 1, **more}))


def _short(cfg) -> str:
    line = room.shortage(cfg, 0, 10 * MiB, free_bytes=lambda _p: MiB)
    assert line is not None and "\n" not in line
    return line


def test_the_line_names_the_kept_archive_and_the_setting_that_removes_it(
        emulator, local_state, drive_env, fast_retries, tiny_config, tmp_path):
    emulator.add_file("d/set.zip", a_zip(DATA))
    root = tmp_path / "data"
    drivestage.pull("drive:d/set.zip", str(root), extract=True)
    size = os.path.getsize(root / "set.zip")

    line = _short(_config(tiny_config, root, tmp_path / "logs"))

    assert line.endswith(
        f"set train.out_dir to a folder on a larger disk, or set data.keep_archive=false (the "
        f"next start removes the dataset archive set.zip from {root} once its members are in "
        f"place: {format_size(size)})"), line
    # What the line promises: the next start's pull (staging's call) removes the archive and
    # keeps the members, with nothing downloaded.
    emulator.clear_requests()
    drivestage.pull("drive:d/set.zip", str(root), extract=True, remove_archive=True)
    assert sorted(os.listdir(root)) == [".drivestage", "ds"]
    assert emulator.api_calls("media.download") == 0
    assert "keep_archive" not in _short(_config(tiny_config, root, tmp_path / "logs"))


def test_no_archive_named_when_it_frees_nothing_on_the_run_folders_disk(
        emulator, local_state, drive_env, fast_retries, tiny_config, tmp_path, small_disk):
    emulator.add_file("d/set.zip", a_zip(DATA))
    root = tmp_path / "data"
    drivestage.pull("drive:d/set.zip", str(root), extract=True)

    # The run folder on another disk: removing the archive frees nothing there.
    assert "keep_archive" not in _short(_config(tiny_config, root, small_disk(8 * MiB) / "logs"))
    # Already set: nothing more to suggest.
    assert "keep_archive" not in _short(_config(tiny_config, root, tmp_path / "logs",
                                                **{"data.keep_archive": False}))
    # A file of that name the pull did not stage (no stamp) is not named.
    other = tmp_path / "other"
    other.mkdir()
    (other / "set.zip").write_bytes(a_zip(DATA))
    assert "keep_archive" not in _short(_config(tiny_config, other, tmp_path / "logs"))
