"""retain47: ``push --delete`` where Drive has a folder at a local file's name: the folder
goes (decided before a byte is sent), and the file takes its name. The folder is checked
again just before its removal, and left where something came into it meanwhile (another
machine's upload): the file had been sent beside it, exit 0, and every pull of DEST then
refused "names 2 items" (attack46's note). Now the push says so, exit 1."""
from __future__ import annotations

from _checkpoints import md5
from _cli import run
from _drive_state import live_md5s
from _proxy import when_sending


def test_a_folder_the_delete_then_leaves_beside_the_file_sent_fails_the_push(
        emulator, through, proxy, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "x").write_bytes(b"now a file")
    emulator.add_file("runs/a/x/inner.txt", b"inner")
    # Another machine puts a file into the folder once the push has decided.
    when_sending(proxy, lambda: emulator.add_file("runs/a/x/theirs.txt", b"theirs"))
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        "Error: drive:runs/a/x is a folder --delete left (the lines above say why), and "
        f"{src}/x was sent beside it: a pull refuses that name until one of them goes; push "
        "--delete again once nothing writes into the folder, or rename one of them"), err
    assert "drive:runs/a/x/theirs.txt came in since it was listed" in err, err
    # The next push --delete, nothing writing there, removes the folder: one item, the file.
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {"x": [md5(b"now a file")]}
