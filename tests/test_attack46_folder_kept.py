"""attack46: ``push --delete`` where Drive has a folder of a local file's name that the
delete leaves (``--protect`` names it). attackpush45 let ``--delete`` through the refusal
of a file beside a folder of its name, as if the folder always went: the file was sent
beside the folder, exit 0, and every pull of DEST refused "names 2 items"."""
from __future__ import annotations

from _cli import run
from _drive_state import live_md5s
from _envs import env  # noqa: F401  (a fixture)


def test_a_folder_the_delete_keeps_stops_the_push(emulator, env, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "x").write_bytes(b"now a file")
    (src / "y.txt").write_bytes(b"y")
    emulator.add_file("runs/a/x/inner.txt", b"inner")
    code, _, err = run("push", str(src), "drive:runs/a", "--delete", "--protect", "x")
    assert code == 2, err
    assert err.strip().splitlines()[-1] == (
        f"Error: drive:runs/a/x exists and is a folder, not a file; {src}/x cannot be sent "
        "there: rename one of them (--delete keeps that folder: it is protected, a run folder, "
        "filtered out, or also in a folder outside DEST)"), err
    assert live_md5s(emulator, "runs/a") == {"x": [None]}   # the folder alone, nothing sent
