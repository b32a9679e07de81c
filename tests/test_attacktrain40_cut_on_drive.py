"""attacktrain40: the run's newest checkpoint on Drive is no longer the file its sidecar vouches
for: cut short or replaced there after it was verified (another program writing into the
folder through a Drive mount, a sync client restoring an old copy, a hand upload).

README: "If that newest checkpoint is damaged (its bytes not those its sidecar vouches for)
... it takes the next older one and says which was skipped and why". Such a file was never
a candidate (the listing counts only checkpoints their sidecar vouches for), so nothing was
said: ``--resume auto`` on a fresh machine went back to the epoch before without a word, and
``trainer status`` named that one as the newest, as if the later epoch had never been saved.
Now both name the file passed over, its place in the run, and why; Drive keeps it as it is.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from trainer import checkpoint as ckpt
from trainer.config import load_config
from trainer.engine import fit
from _tiny_run import tiny_run_config, warnings_said

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = "drive:runs/a"


def _config(tmp_path: Path, epochs: int) -> str:
    return tiny_run_config(tmp_path, epochs, logs=SPEC)


def _cut_on_drive(tmp_path: Path, name: str) -> tuple[str, str, str]:
    """Replace ``name`` on Drive (same file id) with its first half; returns (label, md5 now,
    md5 its sidecar names)."""
    from drivestage.remote import open_store
    from trainer.state import Position

    store, path = open_store(SPEC)
    folder = store.resolve(path)
    entry = next(e for e in store.list(folder) if e.name == name)
    whole = b"".join(store.read_range(entry, 0, entry.size))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole[: len(whole) // 2])
    now = store.upload(str(cut), folder, name, replace=entry)
    side = ckpt.read_sidecar(str(tmp_path / "logs" / name))
    assert side is not None and side.md5 == entry.md5 != now.md5
    label = Position(side.epoch or 0, side.iteration or 0, side.epoch_iteration).label
    return label, now.md5, side.md5


def test_resume_from_drive_says_which_newer_checkpoint_it_passed_over_and_why(
        tmp_path, emulator, drive_env, local_state, caplog):
    fit(load_config(_config(tmp_path, 2)), resume="none")
    label, md5, vouched = _cut_on_drive(tmp_path, "epoch_002.pt")
    shutil.rmtree(tmp_path / "logs")     # (a fresh machine)

    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(load_config(_config(tmp_path, 3)), resume="auto")

    assert result.resumed_from == f"{SPEC}/epoch_001.pt"
    warned = [r.getMessage() for r in warnings_said(caplog)]
    assert warned == [
        f"{SPEC}/epoch_002.pt ({label}) is not the file its sidecar vouches for (its md5 is "
        f"{md5}, the sidecar names {vouched}: cut short or replaced on Drive since it was "
        f"verified); --resume auto passes over it, and Drive keeps it as it is"]


def test_status_names_the_newer_checkpoint_resume_auto_passes_over(
        tmp_path, emulator, drive_env, local_state):
    from trainer.cli import cli

    fit(load_config(_config(tmp_path, 2)), resume="none")
    label, md5, vouched = _cut_on_drive(tmp_path, "epoch_002.pt")
    shutil.rmtree(tmp_path / "logs")

    res = CliRunner().invoke(cli, ["status", "-c", _config(tmp_path, 3)])

    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"{SPEC}/epoch_001.pt: epoch 1, ")
    assert lines[1:] == [
        f"{SPEC}/epoch_002.pt ({label}) is not the file its sidecar vouches for (its md5 is "
        f"{md5}, the sidecar names {vouched}: cut short or replaced on Drive since it was "
        f"verified): --resume auto passes over it",
        lines[2]]
    assert lines[2].startswith(f"--resume auto goes on from {SPEC}/epoch_001.pt: epoch 1, ")


def test_an_older_checkpoint_cut_short_is_not_said(tmp_path, emulator, drive_env, local_state,
                                                    caplog):
    """Only what the resume passes over is worth a line: a damaged file behind the start is
    no loss (retention removes it in time)."""
    fit(load_config(_config(tmp_path, 2)), resume="none")
    _cut_on_drive(tmp_path, "epoch_001.pt")
    shutil.rmtree(tmp_path / "logs")

    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(load_config(_config(tmp_path, 3)), resume="auto")

    assert result.resumed_from == f"{SPEC}/epoch_002.pt"
    assert warnings_said(caplog) == []


def test_status_json_lists_it_among_those_passed_over(tmp_path, emulator, drive_env,
                                                      local_state):
    import json

    from trainer.cli import cli

    fit(load_config(_config(tmp_path, 2)), resume="none")
    label, md5, vouched = _cut_on_drive(tmp_path, "epoch_002.pt")
    shutil.rmtree(tmp_path / "logs")

    res = CliRunner().invoke(cli, ["status", "-c", _config(tmp_path, 3), "--json"])

    data = json.loads(res.stdout)
    assert data["resume_from"] == f"{SPEC}/epoch_001.pt"
    assert data["passed_over"] == [{"where": f"{SPEC}/epoch_002.pt", "why": (
        f"not the file its sidecar vouches for (its md5 is {md5}, the sidecar names "
        f"{vouched}: cut short or replaced on Drive since it was verified)")}]
