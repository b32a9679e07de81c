"""docs/troubleshooting.md: the messages attack12's fixes added, each made to happen (see
tests/_messages.py)."""
from __future__ import annotations

from _envs import env_user_lines  # noqa: F401  (a fixture)
from _messages import command_error as error
from _messages import renders, shown


@renders("is a web address but not a Google Drive link")
def test_a_web_address_that_is_not_drive(emulator, env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()
    line = error("push", str(tmp_path / "logs"), "https://www.dropbox.com/home/run", code=2)
    shown("is a web address but not a Google Drive link", line)


@renders("cannot be removed: in a shared drive, moving an item to the trash needs the Content "
         "manager role")
def test_a_contributor_prunes_a_shared_drive(emulator, env):
    team = emulator.add_shared_drive("Team", role="writer")
    for i in (1, 2):
        emulator.add_file(f"run/epoch_{i:03d}.pt", bytes([i]), drive_id=team)
    line = error("prune", "drive:shared/Team/run", "--keep-last", "1")
    shown("cannot be removed: in a shared drive, moving an item to the trash needs the Content "
          "manager role", line)
