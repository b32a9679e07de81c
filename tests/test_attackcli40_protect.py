"""``drivestage prune --protect NAME`` with a NAME that is in DEST under no name or id
(attackcli40): a typo (``epoch_05.pt`` for ``epoch_005.pt``) protected nothing, and the
checkpoint meant was deleted with no word. It is said now, naming the names that are
there; the prune is not stopped (a name a run protected may be gone by now: no reason to
stop every later prune)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from drivestage.cli import cli


@pytest.fixture
def dest(emulator, drive_env, local_state):
    for epoch in (1, 2, 3, 4, 5):
        emulator.add_file(f"logs/epoch_{epoch:03d}.pt", f"weights {epoch}".encode())
    return emulator


def _prune(*args: str):
    return CliRunner().invoke(cli, ["prune", "drive:logs", "--keep-last", "2", *args])


def _left(emulator) -> list[str]:
    return sorted(f["title"] for f in emulator.files()
                  if not f["labels"]["trashed"] and f["title"].endswith(".pt"))


def test_a_protect_that_names_nothing_is_said(dest):
    result = _prune("--protect", "epoch_01.pt")
    assert result.exit_code == 0
    assert ("WARNING drivestage.cli.push: --protect epoch_01.pt names no checkpoint in "
            "drive:logs (names are case-sensitive; it holds epoch_001.pt, epoch_002.pt, "
            "epoch_003.pt and 2 more): it protects nothing\n") in result.output
    assert _left(dest) == ["epoch_004.pt", "epoch_005.pt"]


def test_a_protect_that_names_a_checkpoint_is_quiet(dest):
    result = _prune("--protect", "epoch_001.pt")
    assert result.exit_code == 0
    assert "WARNING" not in result.output
    assert _left(dest) == ["epoch_001.pt", "epoch_004.pt", "epoch_005.pt"]
