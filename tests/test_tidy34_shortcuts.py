"""Two shortcuts in a push's DEST to one folder (tidy34).

The push's listing took the two for one item (they carry the folder's id): it saw only one
of them, so ``push --delete`` removed one shortcut a push (the second went at the next
push), and a folder of SRC named like the shortcut it did not see was "made" through it: a
second copy of every file sent into the folder it leads to, repaired at the next push.
"""
from __future__ import annotations

import _cli

SHORTCUT = "application/vnd.google-apps.shortcut"


def _two_shortcuts(emulator) -> str:
    emulator.add_folder("out")
    target = emulator.add_folder("T")
    emulator.add_file("T/x.bin", b"x")
    emulator.add_shortcut("out/a", target)
    emulator.add_shortcut("out/b", target)
    return target


def _live(emulator) -> list[tuple[str, str]]:
    return sorted((f["title"], f["mimeType"]) for f in emulator.files()
                  if not f["labels"]["trashed"])


def test_push_delete_removes_both_shortcuts_to_one_folder_in_one_push(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """Neither shortcut is in SRC: both go in the one push (each only itself), and the
    folder they lead to keeps what it holds."""
    _two_shortcuts(emulator)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_bytes(b"f")

    code, out, err = _cli.run("push", str(src), "drive:out", "--delete")

    assert code == 0, err
    assert "removing 2 items from drive:out that are not in SRC" in err
    assert err.strip().splitlines()[-1].endswith("1 uploaded (1 B), 0 unchanged, 2 deleted "
                                                 "(not local)")
    assert not [t for t, mime in _live(emulator) if mime == SHORTCUT]
    assert emulator.read_bytes(emulator.find("T/x.bin")["id"]) == b"x"


def test_a_folder_of_src_through_one_of_two_shortcuts_is_not_sent_again(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """SRC's ``a/x.bin`` is what the folder ``out/a`` leads to holds already: unchanged, no
    second copy; ``--delete`` removes the other shortcut, not in SRC."""
    _two_shortcuts(emulator)
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a/x.bin").write_bytes(b"x")

    code, out, err = _cli.run("push", str(src), "drive:out", "--delete")

    assert code == 0, err
    assert err.strip().splitlines()[-1].endswith("0 uploaded (0 B), 1 unchanged, 1 deleted "
                                                 "(not local)")
    assert [t for t, _ in _live(emulator)].count("x.bin") == 1
    assert [t for t, mime in _live(emulator) if mime == SHORTCUT] == ["a"]
