"""attackpush45: a local file whose name is a folder's on Drive (the user's, or one an earlier
push made before the local folder became a file). The push sent the file beside the folder
and exited 0; every pull of DEST then refused: "drive:runs/a/x names 2 items". Now that
file is not sent (said in one line; the rest is sent, exit 1: pushshared48), and ``--delete``
replaces the folder."""
from __future__ import annotations

from _checkpoints import md5
from _cli import run
from _drive_state import live_md5s
from _envs import env  # noqa: F401  (a fixture)


def test_a_file_named_as_a_folder_on_drive_is_not_sent_beside_it(emulator, env, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "x").write_bytes(b"now a file")
    (src / "y.txt").write_bytes(b"y")
    emulator.add_file("runs/a/x/inner.txt", b"inner")
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 1, err   # (x alone not sent, the rest pushed: pushshared48)
    assert [ln for ln in err.splitlines() if "is a folder, not a file" in ln][0].endswith(
        f"drive:runs/a/x exists and is a folder, not a file; {src}/x cannot be sent "
        "there: rename one of them, or push with --delete to replace the folder"), err
    assert live_md5s(emulator, "runs/a") == {"x": [None], "y.txt": [md5(b"y")]}   # (x: the folder)
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {"x": [md5(b"now a file")], "y.txt": [md5(b"y")]}
    code, _, err = run("pull", "drive:runs/a", str(tmp_path / "back"))
    assert code == 0, err
    assert (tmp_path / "back" / "a" / "x").read_bytes() == b"now a file"
