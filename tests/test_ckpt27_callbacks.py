"""results.csv and the curves are written through a fresh temporary name (ckpt27, found by
attackdata27): they went through the fixed ``.results.csv.tmp`` / ``.loss.png.tmp``, opened
as they were, so a link planted there (a run folder copied from elsewhere, a shared folder)
had its target overwritten, outside the run folder."""
from __future__ import annotations

import csv
import os
import stat

import pytest

from trainer.callbacks import CSV_COLUMNS, plot_history, write_results_csv

HISTORY = [{"epoch": 1, "phase": "train", "lr": 0.01, "train_loss": 2.5, "val_loss": 2.0,
            "map50": 0.25, "map": 0.1},
           {"epoch": 2, "phase": "train", "lr": 0.005, "train_loss": 1.5, "val_loss": 1.25,
            "map50": 0.5, "map": 0.2}]


def _planted(folder, name: str, outside) -> None:
    """The fixed temporary name of ``name`` linked to ``outside`` (the user's file)."""
    outside.write_text("precious\n")
    os.symlink(outside, folder / f".{name}.tmp")


def test_results_csv_never_writes_through_a_link_at_a_temporary_name(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _planted(run, "results.csv", tmp_path / "bashrc")
    old = os.umask(0o022)
    try:
        write_results_csv(str(run / "results.csv"), HISTORY)
    finally:
        os.umask(old)
    assert (tmp_path / "bashrc").read_text() == "precious\n"
    with open(run / "results.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == ["1", "2"] and rows[2][CSV_COLUMNS.index("map50")] == "0.5"
    assert stat.S_IMODE(os.stat(run / "results.csv").st_mode) == 0o644   # (the umask's, as before)
    assert sorted(os.listdir(run)) == [".results.csv.tmp", "results.csv"]  # (the link, left)


def test_the_curves_never_write_through_a_link_at_a_temporary_name(tmp_path):
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    run.mkdir()
    _planted(run, "loss.png", tmp_path / "a")
    _planted(run, "map.png", tmp_path / "b")
    written = plot_history(HISTORY, str(run))
    assert sorted(os.path.basename(p) for p in written) == ["loss.png", "map.png"]
    assert (tmp_path / "a").read_text() == "precious\n"
    assert (tmp_path / "b").read_text() == "precious\n"
    for name in ("loss.png", "map.png"):
        assert (run / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert not (run / name).is_symlink()
