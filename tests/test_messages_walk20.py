"""walk20's messages (docs/troubleshooting.md): each made to happen through the real CLI on
the emulator over HTTP, as a new user met it. More of walk20's tests: tests/test_walk20.py."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from _messages import error_line, renders, shown
from trainer.cli import cli


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI on the emulator, fast retries."""


def _media_gets(emulator) -> list[str]:
    return [r.path for r in emulator.requests if r.query.get("alt") == "media"]


# ------------------------------------------- weights given as a drive: folder, not a file

def _run_folder_on_drive(emulator) -> None:
    """What `drivestage ls drive:Models/demo/logs` shows after a run: checkpoints and logs."""
    for name in ("epoch_003.pt", "epoch_004.pt", "best.pt", "results.csv"):
        emulator.add_file(f"Models/demo/logs/{name}", os.urandom(4096))


FOLDER_REFUSED = ("drive:Models/demo/logs is a folder on Drive, not a file; name a file in it "
                  "(drive:Models/demo/logs/<name>)")




@renders("is a folder on Drive, not a file; name a file in it")
@pytest.mark.parametrize("command", ["eval", "predict", "export-onnx"])
def test_weights_that_name_a_drive_folder_are_refused_before_a_byte_is_pulled(
        command, emulator, tiny_config, tmp_path):
    """`trainer eval -w drive:Models/demo/logs` (the run folder, not best.pt in it) pulled the
    whole folder, every checkpoint (360 MB in the walk), then said "weights file not found:
    …/weights/logs". Now refused at once, naming the option and how to name a file."""
    _run_folder_on_drive(emulator)
    out = tmp_path / "out"
    args = {"eval": ["eval", "-c", tiny_config(), "-w", "drive:Models/demo/logs"],
            "predict": ["predict", "--weights", "drive:Models/demo/logs", "--source",
                        str(tmp_path), "--out", str(out)],
            "export-onnx": ["export-onnx", "--weights", "drive:Models/demo/logs", "--out",
                            str(out / "m.onnx")]}[command]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    line = error_line(r.stderr)
    shown("is a folder on Drive, not a file; name a file in it", line)
    assert line == f"Error: --weights: {FOLDER_REFUSED}"
    assert _media_gets(emulator) == []




@renders("not found (…); no run has saved there yet: a run makes it at its first save, or "
         "drive.logs names the wrong folder")
def test_status_of_a_drive_logs_that_does_not_exist_says_so(emulator, tiny_config):
    """A typo in drive.logs (`logs` -> `log`) said "no verified checkpoint on … yet", as if
    the run had not saved yet: the user waits for a save that goes elsewhere."""
    emulator.add_folder("Models/demo/logs")
    cfg = tiny_config(**{"drive.logs": "drive:Models/demo/log"})
    r = CliRunner().invoke(cli, ["status", "-c", cfg])
    assert r.exit_code == 1, r.output
    line = error_line(r.stderr)
    shown("not found (…); no run has saved there yet: a run makes it at its first save, or "
          "drive.logs names the wrong folder", line)
    assert line == ("Error: drive.logs drive:Models/demo/log not found (no item named 'log' in "
                    "drive:Models/demo; names are case-sensitive); no run has saved there yet: a "
                    "run makes it at its first save, or drive.logs names the wrong folder")




def _run_with_metrics(src, maps: list[float]) -> None:
    import hashlib
    import json

    os.makedirs(src, exist_ok=True)
    for epoch, value in enumerate(maps, 1):
        data = os.urandom(2000)
        side = {"format": 2, "epoch": epoch, "epoch_iteration": 0, "run": "20261204-061922-a324",
                "md5": hashlib.md5(data).hexdigest(), "size": len(data),
                "metrics": {"map50": value, "val_loss": 1.0 / epoch}}
        (src / f"epoch_{epoch:03d}.pt").write_bytes(data)
        (src / f"epoch_{epoch:03d}.json").write_text(json.dumps(side))


def _drivestage(*args: str):
    from drivestage.cli import cli as ds_cli

    return CliRunner().invoke(ds_cli, list(args))




@renders("no checkpoint's sidecar has the metric")
@pytest.mark.parametrize("typed", ["mAP50", "map_50", "MAP50"])
def test_a_metric_typo_is_refused_before_the_best_is_pruned(typed, emulator, tmp_path):
    """`prune --keep-best 1 --metric mAP50` (the trainer writes map50) ranked no checkpoint,
    so the best one (epoch 1 here) was deleted permanently, with exit 0 and no word."""
    _run_with_metrics(tmp_path / "logs", [0.9, 0.1, 0.2, 0.3])
    assert _drivestage("push", str(tmp_path / "logs"), "drive:runs/a").exit_code == 0
    before = sorted(f["title"] for f in emulator.files())
    r = _drivestage("prune", "drive:runs/a", "--keep-last", "1", "--keep-best", "1",
                    "--metric", typed)
    assert r.exit_code == 2, r.output
    line = error_line(r.stderr)
    shown("no checkpoint's sidecar has the metric", line)
    assert line == (f"Error: no checkpoint's sidecar has the metric {typed!r}, and they have "
                    "'map50' (metric names are case-sensitive): give --metric map50, or no "
                    "checkpoint is kept as best")
    assert sorted(f["title"] for f in emulator.files()) == before
    ok = _drivestage("prune", "drive:runs/a", "--keep-last", "1", "--keep-best", "1",
                     "--metric", "map50")
    assert ok.exit_code == 0, ok.output
    assert {f["title"] for f in emulator.files() if f["title"].startswith("epoch_")} == {
        "epoch_001.pt", "epoch_001.json", "epoch_004.pt", "epoch_004.json"}




@renders("a second Ctrl-C: stopped at once, without waiting for the uploads; the newest "
         "checkpoint in … is … (…): run the same command again to train on from it")
def test_a_second_ctrl_c_says_what_is_saved(tiny_config, caplog):
    """The first Ctrl-C's stop names the checkpoint saved and verified; a second one (stop at
    once) ended with "Interrupted." alone: nothing said what was saved, or what to run."""
    import logging
    import signal

    from test_messages_attack18 import _run
    from trainer.config import load_config
    from trainer.state import Position

    run = _run(load_config(tiny_config()))
    try:
        run.state.pos = Position(1, 2, 0)
        run.checkpointer.on_fit_epoch_end(run, run.state.pos, {"epoch": 1})
        assert run.writer.wait(run.checkpointer._epoch_job)   # epoch_001.pt written
        run.stop.request(signal.SIGINT)
        with caplog.at_level(logging.WARNING, logger="trainer"):
            run.checkpointer.on_interrupt(run, KeyboardInterrupt())
    finally:
        run.writer.close()
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("trainer"))
    shown("a second Ctrl-C: stopped at once, without waiting for the uploads; the newest "
          "checkpoint in … is … (…): run the same command again to train on from it", text)

