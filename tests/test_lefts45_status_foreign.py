"""lefts45: a file of another program under a name the run's saves write, in the run folder
(attacktrain45: ``train`` refuses it, :func:`trainer.resume_checks.refuse_foreign`, before it
looks at Drive), and ``trainer status`` said Drive's verdict: "--resume auto goes on from …"
or the lone file it would take up. Status now says train's refusal in train's own words, in
both its branches (a verified checkpoint on Drive, or only a lone one), and fetches nothing
to look inside for a resume that is refused first. The real PyDrive2 stack, the emulator."""
from __future__ import annotations

import hashlib
import json
import tempfile

import pytest
import torch
from click.testing import CliRunner

from _lease_pairs import save_pair
from _tiny_run import tiny_run_config
from trainer.errors import CheckpointError
from trainer.resume_checks import refuse_foreign


def _status(config: str, *extra: str):
    got = CliRunner().invoke(__import__("trainer.cli", fromlist=["cli"]).cli,
                             ["status", "-c", config, *extra])
    return got.exit_code, got.output


def test_status_says_trains_refusal_of_another_programs_file_under_a_saved_name(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    from trainer.drive import DriveFolder

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    config = tiny_run_config(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    torch.save(torch.nn.Linear(2, 1).state_dict(), logs / "last.pt")
    md5 = hashlib.md5((logs / "last.pt").read_bytes()).hexdigest()
    with pytest.raises(CheckpointError) as refused:
        refuse_foreign(str(logs))
    assert str(refused.value).startswith(f"{logs / 'last.pt'} is no checkpoint of this trainer")
    # Only a lone checkpoint on Drive (a save killed between its two uploads).
    save_pair(tmp_path / "made", "epoch_002.pt", 2.0)
    emulator.add_file("runs/a/epoch_002.pt", (tmp_path / "made" / "epoch_002.pt").read_bytes())
    code, out = _status(config)
    assert (code, out.splitlines()[-1]) == (1, (
        "Error: no verified checkpoint on drive:runs/a yet; --resume auto would refuse: "
        f"{refused.value}")), out
    # A verified one (the lone one further on): not "goes on from" it, nor fetched to look
    # inside.
    save_pair(tmp_path / "sent", "epoch_001.pt", 1.0)
    DriveFolder("drive:runs/a", str(tmp_path / "sent")).push()
    before = len(emulator.requests)
    code, out = _status(config)
    assert code == 0, out
    assert f"--resume auto would refuse: {refused.value}" in out.splitlines(), out
    assert "goes on from" not in out, out
    pts = {emulator.find(f"runs/a/{n}")["id"] for n in ("epoch_001.pt", "epoch_002.pt")}
    assert not [r for r in emulator.requests[before:] if r.query.get("alt") == "media" and
                r.path.rsplit("/", 1)[-1] in pts], out
    code, out = _status(config, "--json")
    assert code == 0 and json.loads(out)["resume_refused"] == str(refused.value), out
    # Nothing touched: the file, the run folder, TMPDIR.
    assert sorted(p.name for p in logs.iterdir()) == ["last.pt"]
    assert hashlib.md5((logs / "last.pt").read_bytes()).hexdigest() == md5
    assert list(temp.iterdir()) == []
