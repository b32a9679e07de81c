"""The warning of a push of a folder above a run folder this machine has no record of, known
by its mark on Drive, which docs/troubleshooting.md quotes (runmark30)."""
from __future__ import annotations

from _cli import run
from _messages import renders, shown
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from trainer.drive import DriveFolder, retention_policy

HEADING = "is a run folder (marked on Drive by its run's push, with its own retention)"


@renders(HEADING)
def test_a_push_on_a_machine_without_the_record_says_the_mark_made_it_a_run_folder(
        emulator, env, tmp_path, monkeypatch):
    old = tmp_path / "old-vm" / "exp1"
    old.mkdir(parents=True)
    _save(str(old), 1)
    DriveFolder("drive:runs/exp1", str(old), retention_policy(0, 0, None)).push()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "fresh-state"))
    runs = tmp_path / "runs"
    (runs / "exp1").mkdir(parents=True)   # (pulled back, or logs of its own here)
    (runs / "exp1" / "results.csv").write_text("epoch\n")

    code, _, err = run("push", str(runs), "drive:runs")

    assert code == 0, err
    line = next(x for x in err.splitlines() if "is a run folder" in x)
    assert line == (
        "WARNING drivestage.upload_tree: drive:runs/exp1 is a run folder (marked on Drive by "
        "its run's push, with its own retention); its checkpoints are left to that push here: "
        "none it pruned is sent again, none it keeps is deleted. The rest of exp1 is pushed"), err
    shown(HEADING, line)
