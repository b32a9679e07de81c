"""The README's CheckpointSync snippet runs as written against the emulator (docs28): the
loop's `...` becomes an atomic save of a small file and it runs 5 epochs instead of 100;
then a "fresh machine" (an empty folder) runs its first lines and gets the newest back."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAVE = ("    import os; os.makedirs('runs/my-run', exist_ok=True); "
        "p = f'runs/my-run/epoch_{epoch:03d}.pt'; "
        "open(p + '.tmp', 'wb').write(bytes([epoch]) * 1000); os.replace(p + '.tmp', p)")


def _snippet() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(from drivestage\.hooks import CheckpointSync.*?)```", text, re.S).group(1)
    lines = block.splitlines()
    at = [i for i, line in enumerate(lines) if line.strip().startswith("...")]
    assert len(at) == 1 and "range(1, 101)" in block
    lines[at[0]] = SAVE
    return "\n".join(lines).replace("range(1, 101)", "range(1, 6)")


def test_the_readmes_checkpoint_sync_example_runs(emulator, drive_env, tmp_path, monkeypatch):
    code = _snippet()
    first = tmp_path / "m1"
    first.mkdir()
    monkeypatch.chdir(first)
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state1"))
    exec(compile(code, "README.md", "exec"), {})
    on_drive = sorted(f["title"] for f in emulator.files()
                      if not f["labels"]["trashed"] and f["title"].endswith(".pt"))
    assert on_drive == ["epoch_003.pt", "epoch_004.pt", "epoch_005.pt"]   # keep_last=3

    fresh = tmp_path / "m2"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state2"))   # another machine
    before_loop = code.split("\nfor epoch")[0]
    scope: dict = {}
    exec(compile(before_loop, "README.md", "exec"), scope)
    scope["sync"].on_train_end()            # (the loop and its end, not run here)
    assert scope["entry"].name == "epoch_005.pt"
    got = (fresh / "runs" / "my-run" / "epoch_005.pt").read_bytes()
    assert hashlib.md5(got).hexdigest() == hashlib.md5(bytes([5]) * 1000).hexdigest()
    assert os.listdir(fresh / "runs" / "my-run") == ["epoch_005.pt"]
