"""attack44: a title of 5,000 digits in a pruned folder (``autosave_999…9.pt``, as a hostile
collaborator or a broken tool may write) raised int()'s ValueError in the retention plan:
``drivestage prune``, and every retention of a push or a trainer there, stopped with it. It
is now an autosave of no number (never ordered by one), and the plan goes on."""
from __future__ import annotations

from click.testing import CliRunner

from drivestage.cli import cli


def test_prune_with_a_title_of_thousands_of_digits_plans_and_deletes_exactly(emulator,
                                                                            local_state,
                                                                            drive_env):
    for epoch in range(1, 5):
        emulator.add_file(f"Models/logs/epoch_{epoch:03d}.pt", b"w" * (100 * epoch))
    huge = "autosave_" + "9" * 5000 + ".pt"
    emulator.add_file(f"Models/logs/{huge}", b"hostile")
    result = CliRunner().invoke(cli, ["prune", "drive:Models/logs", "--keep-last", "2"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.splitlines()[-1].startswith("2 to delete")
    assert sorted(f["title"] for f in emulator.files()
                  if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder")) \
        == sorted(["epoch_003.pt", "epoch_004.pt", huge])
