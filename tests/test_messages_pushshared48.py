"""pushshared48: the docs/troubleshooting entry of a push's last line when a folder on Drive
held one file's name (that name not sent, the rest pushed, exit 1), shown by the real CLI
against the emulator (named test_messages_* as test_docs collects @renders from those only)."""
from __future__ import annotations

from _cli import run
from _drive_state import live_md5s
from _messages import error_line, renders, shown

BLOCKED = "file of SRC not sent: a folder on Drive has its name (the line above names it)"


@renders(BLOCKED)
def test_a_push_past_a_folder_at_a_files_name(emulator, drive_env, local_state, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    (src / "b.txt").write_bytes(b"b")
    emulator.add_folder("runs/a/a.txt")
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 1, err
    shown(BLOCKED, error_line(err))
    assert sorted(live_md5s(emulator, "runs/a")) == ["a.txt", "b.txt"]
    assert live_md5s(emulator, "runs/a")["a.txt"] == [None]
