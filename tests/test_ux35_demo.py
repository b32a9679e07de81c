"""ux35: two `make demo`s at once. The second emptied the demo's folder while the first ran
in it (its emulator's Drive, its run folders, its state), and the first failed half-way
with errors of files gone. The second now stops at once, deleting nothing."""
from __future__ import annotations

import subprocess
import sys

import pytest

HOLD = """
import sys, time
from pathlib import Path
from trainer import demo
demo._fresh_workdir(Path(sys.argv[1]))
(Path(sys.argv[1]) / "drive").mkdir()
(Path(sys.argv[1]) / "drive" / "first.bin").write_bytes(b"the first demo's")
print("held", flush=True)
sys.stdin.read()
"""


def test_a_second_demo_in_the_same_folder_stops_and_deletes_nothing(tmp_path):
    from trainer import demo

    work = tmp_path / "demo_out"
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(work)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline() == "held\n"
        with pytest.raises(SystemExit) as stop:
            demo.main(["--workdir", str(work)])
        assert str(stop.value) == (
            f"demo: another demo is running in {work}; nothing was deleted: wait for it to "
            "end, or give this one a folder of its own (python -m trainer.demo --workdir "
            "OTHER)")
        assert (work / "drive" / "first.bin").read_bytes() == b"the first demo's"
    finally:
        first.stdin.close()
        first.wait(timeout=60)
    # once the first has ended, the folder is the next demo's to empty (and lock)
    again = demo._fresh_workdir(work)
    try:
        assert sorted(p.name for p in again.iterdir()) == [demo.MARKER]
    finally:
        demo.release_workdirs()
