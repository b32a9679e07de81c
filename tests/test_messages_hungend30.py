"""docs/troubleshooting.md: hungend30's message made to happen (the end of a run whose final
flush waits on a Google Drive mount that does not answer: tests/test_hungend30_final_wait.py)."""
from __future__ import annotations

from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from _messages import renders, shown
from test_hungend30_final_wait import _temporary_folders_here, unwritten_end  # noqa: F401
from trainer.cli import error_line

HEADING = "did not answer for … s (… is a Google Drive mount: stopped answering?)"


@renders(HEADING)
def test_a_final_flush_on_a_hung_drive_mount(tiny_config, working_drive_mount):
    got, _ = unwritten_end(tiny_config, working_drive_mount)
    assert got.exit_code == 1
    shown(HEADING, error_line(got))
