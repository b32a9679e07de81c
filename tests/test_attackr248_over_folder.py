"""attackr248: a file push could not read (EACCES at its open) at the name of a folder on
Drive, under ``--delete``.

pushread48's rule: nothing on Drive at or under a path push could not read is removed or
replaced, and the line says so. Here ``--delete`` had decided before the send (as it must:
before a byte goes) that the Drive folder at the file's name goes (push's folder-at-a-file's-
name rule, left as it is: pushshared48); the file then could not be read, was never sent,
and the folder went anyway: ``ckpt/a.pt``, the only copy, in the trash, the line saying
"nothing at drive:runs/x/ckpt on Drive is removed or replaced this time". Now what is at
or under a path refused at its send is dropped from the deletions before they are applied
(the count line's items counted again)."""
from __future__ import annotations

from test_pushread48_unread import lines, live, push_unprivileged


def test_a_file_refused_at_its_open_keeps_the_drive_folder_at_its_name(
        emulator, drive_env, local_state, tmp_path):
    emulator.add_file("runs/x/ckpt/a.pt", b"a on drive")
    emulator.add_file("runs/x/b.txt", b"old b")
    emulator.add_file("runs/x/gone.txt", b"gone")
    src = tmp_path / "src"
    src.mkdir()
    (src / "ckpt").write_bytes(b"a file now")
    (src / "b.txt").write_bytes(b"b")
    (src / "ckpt").chmod(0)
    code, err = push_unprivileged(emulator, str(src), "drive:runs/x", "--delete")
    assert code == 1, err[-3000:]
    assert len(lines(err)) == 1 and "nothing at drive:runs/x/ckpt on Drive is removed" in \
        lines(err)[0]
    assert live(emulator) == {"b.txt": b"b", "ckpt/a.pt": b"a on drive"}   # (7e563002: b.txt only)
    # (the count: gone.txt alone, not the folder with what it holds; 7e563002: 3 items)
    assert "--delete: removing 1 item from drive:runs/x that is not in SRC" in err, err[-3000:]
    assert "then failed: 1 uploaded (1 B), 0 unchanged, 1 deleted (not local), 1 not read" \
        in err, err[-3000:]
