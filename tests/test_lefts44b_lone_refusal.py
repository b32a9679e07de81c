"""lefts44b: where Drive holds only checkpoints without their sidecar and the run folder a
file of the name ``--resume auto`` would take up that does not load, the resume refuses
(attack44: :func:`trainer.drive_lone.take_up`), and ``trainer status`` said it goes on from
that file. Status now says the same refusal, in the same words, naming the same file."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from _tiny_run import tiny_run_config
from test_attack44_lone_names import lone_epochs
from trainer.drive import DriveFolder
from trainer.errors import CheckpointError
from trainer.resume import _decide


def _on_drive(emulator) -> list:
    return sorted((f["title"], f.get("md5Checksum")) for f in emulator.files()
                  if not f["mimeType"].endswith(".folder") and not f["labels"]["trashed"])


def test_status_says_the_take_ups_refusal_of_a_file_here_under_the_lone_name(
        emulator, drive_env, local_state, tmp_path):
    lone_epochs(emulator, tmp_path / "made")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "epoch_002.pt").write_bytes(b"not a checkpoint")
    before = _on_drive(emulator)

    got = CliRunner().invoke(__import__("trainer.cli", fromlist=["cli"]).cli,
                             ["status", "-c", tiny_run_config(tmp_path, out_dir=logs)])
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with pytest.raises(CheckpointError) as refused:
        _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert str(refused.value).startswith(f"{logs / 'epoch_002.pt'} does not load as a checkpoint")
    assert got.exit_code == 1
    assert got.output.splitlines()[-1] == (
        "Error: no verified checkpoint on drive:runs/a yet; --resume auto would refuse: "
        f"{refused.value}"), got.output
    # Nothing touched by either: the file here, the run folder, Drive.
    assert sorted(p.name for p in logs.iterdir()) == ["epoch_002.pt"]
    assert (logs / "epoch_002.pt").read_bytes() == b"not a checkpoint"
    assert _on_drive(emulator) == before
