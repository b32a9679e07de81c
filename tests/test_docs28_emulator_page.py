"""docs/emulator.md's "Pointing clients at it" block runs as written against a fresh
emulator (found by docs28: it pulled a zip nothing had put there, into a folder
configs/demo.yaml does not read). Only the sizes are cut: fewer images, one short epoch."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _block() -> list[str]:
    text = (REPO / "docs" / "emulator.md").read_text(encoding="utf-8")
    section = text.split("## Pointing clients at it", 1)[1]
    block = re.search(r"^```bash\n(.*?)^```", section, re.S | re.M).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_pointing_clients_at_the_emulator_runs_as_written(emulator, tmp_path):
    lines = _block()
    assert lines[0].startswith("export DRIVESTAGE_API_ROOT=") and lines[1].startswith("export DRIVESTAGE_TOKEN=")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    bin_dir = tmp_path / "bin"          # `drivestage` and `trainer` as this checkout's code
    bin_dir.mkdir()
    # `trainer` forked with torch imported (tests/_trainer_proc.py; its client a stdlib-only
    # script): the import was most of the CPU of its two commands.
    from _trainer_proc import serve

    server = serve(str(tmp_path / "trainer.sock"))
    client = REPO / "tests" / "_forkrun.py"
    shims = {"drivestage": f'exec "{sys.executable}" -m drivestage "$@"',
             "trainer": f'exec "{sys.executable}" -S "{client}" "{tmp_path / "trainer.sock"}" "$@"'}
    for prog, line in shims.items():
        (bin_dir / prog).write_text(f"#!/bin/sh\n{line}\n")
        (bin_dir / prog).chmod(0o755)
    script = ["set -e", f"export DRIVESTAGE_API_ROOT={emulator.url}", "export DRIVESTAGE_TOKEN=t"]
    for line in lines[2:]:
        line = line.split("  #", 1)[0]
        if line.startswith("trainer synth-data"):
            line += " --images 24"
        if line.startswith("trainer train"):
            line += " --set train.epochs=1 --set model.input_size=64 --set model.width=0.25"
        script.append(line)
    # One torch thread in the trainer too, as in this process (one_torch_thread): two threads
    # spinning against the other workers on two shared cores made its one step 2.5 s, not 0.1.
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(REPO),
               DRIVESTAGE_STATE_DIR=str(tmp_path / "state"), OMP_NUM_THREADS="1")
    try:
        res = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    finally:
        server.kill()
        server.wait(60)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert (tmp_path / "data" / "demo" / "VOCdevkit").is_dir()
    assert emulator.find("Models/demo/logs/best.pt") is not None
