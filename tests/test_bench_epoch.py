"""bench/epoch.py stays runnable and its report whole: every part of an epoch measured, the
shares adding up to the wall time, the parts-alone rates beside them (tiny sizes here)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench" / "epoch.py"
PHASES = {"data", "step", "ema", "val_loss", "map", "ckpt", "logs", "drive", "other"}


@pytest.mark.slow
def test_epoch_bench_reports_every_part_of_an_epoch(tmp_path):
    from _trainer_proc import start_script

    out = tmp_path / "epoch.json"
    # `python bench/epoch.py ...` forked with torch imported (tests/_trainer_proc.py): its
    # start imported torch, half of its CPU time here.
    proc = start_script(str(BENCH), ["--images", "24", "--size", "64", "--batch", "4",
                                     # images of 64-96 px, not VOC's 375-500: each is decoded
                                     # and fitted to the model's 64 px at every load
                                     "--image-size", "64", "96",
                                     "--epochs", "1", "--workers", "0", "--step-iters", "1", "--threads", "1",
                                     # a model a quarter as wide: checkpoints of 4.5 MB, not 70 MB
                                     "--set", "model.width=0.25", "--json", str(out)],
                        stdout=str(tmp_path / "out"), stderr=str(tmp_path / "err"))
    try:
        code = proc.wait(timeout=300)
    finally:
        proc.kill()
    assert code == 0, (tmp_path / "err").read_text()[-3000:]
    lines = (tmp_path / "out").read_text().splitlines()
    assert lines[0].startswith("# CPU: ") and "native bf16: " in lines[0]
    result = json.loads(out.read_text())
    (e,) = result["epochs"]
    assert e["epoch"] == 1 and set(e["shares"]) == PHASES and set(e["background_s"]) == {"write", "push"}
    assert sum(e["shares"].values()) == pytest.approx(1.0, abs=0.01)
    assert sum(e["seconds"].values()) == pytest.approx(e["wall_s"], rel=0.01)
    # every phase happened (the Drive emulator is on by default: the bar asks what is safe)
    assert [p for p in PHASES - {"other"} if not e["seconds"][p] > 0] == []
    assert e["images"] == 4 * 4 and e["img_s"] == pytest.approx(e["images"] / e["wall_s"])
    assert e["step_img_s"] > 0
    # the epoch's checkpoint was written and pushed by the background writer after it
    assert [k for k, v in result["background_after_last_epoch_s"].items() if not v > 0] == []
    assert result["fit_end_s"] > 0
    assert result["loader_only"]["images"] == 16 and result["loader_only"]["img_s"] > 0
    assert result["step_only"]["images"] == 4 and result["step_only"]["median_img_s"] > 0
    assert "gpu_idle_waiting_for_data" not in result
    assert any(line.startswith("loader only") for line in lines)
    assert any(line.startswith("step only") for line in lines)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_epoch_bench_says_in_one_line_when_there_is_no_gpu(monkeypatch, capsys):
    """In this process (the bench's own process is the test above): its main raises
    SystemExit with the line, which Python prints on stderr alone, exit status 1."""
    import importlib.util

    monkeypatch.setattr(sys, "path", list(sys.path))      # the bench adds its folders
    spec = importlib.util.spec_from_file_location("bench_epoch", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with pytest.raises(SystemExit) as exited:
        bench.main(["--device", "cuda"])
    assert exited.value.code == (f"--device cuda: this machine has no usable CUDA GPU (torch "
                                 f"{torch.__version__}); run with --device cpu")
    assert capsys.readouterr() == ("", "")
