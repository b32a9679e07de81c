"""guards40: the push summary's ``N deleted (not local)`` counts items, as the ``--delete``
lines do. It counted paths: an item filed in two folders of DEST (two parents, kept from
before 2020), removed from both item by item, was "2 deleted" after "removing 1 item"; a
folder removed whole with what it held was "1 deleted" after "removing 3 items". Through the
real stack (the CLI in-process, PyDrive2, the emulator over HTTP)."""
from __future__ import annotations

from _cli import run
from test_attacksync36_walk import _parents


def _src(tmp_path):
    src = tmp_path / "runs"
    for folder in ("a", "b"):
        (src / folder).mkdir(parents=True)
        (src / folder / "log.txt").write_text(f"{folder}\n")
    return src


def _summary(err: str) -> str:
    """The summary line, less its ``push SRC -> DEST: `` head."""
    return [line for line in err.splitlines() if " uploaded (" in line][-1].split(
        " -> drive:runs: ", 1)[1]


def test_an_item_in_two_folders_of_dest_is_one_deleted(emulator, local_state, drive_env,
                                                        tmp_path):
    src = _src(tmp_path)
    code, _, err = run("push", str(src), "drive:runs")
    assert code == 0, err
    x = emulator.add_file("runs/a/x.txt", b"x\n")
    _parents(emulator, "runs/a/x.txt", "runs/b")

    code, _, err = run("push", str(src), "drive:runs", "--delete")

    assert code == 0, err
    assert emulator.store.get(x)["trashed"], err
    assert "--delete: removing 1 item from drive:runs that is not in SRC (to the Drive " \
        "trash)" in err, err
    assert _summary(err) == "0 uploaded (0 B), 2 unchanged, 1 deleted (not local)", err


def test_a_folder_removed_whole_counts_what_it_held(emulator, local_state, drive_env,
                                                   tmp_path):
    src = _src(tmp_path)
    code, _, err = run("push", str(src), "drive:runs")
    assert code == 0, err
    emulator.add_file("runs/old/one.txt", b"1\n")
    emulator.add_file("runs/old/two.txt", b"2\n")
    emulator.add_file("runs/stale.txt", b"s\n")

    code, _, err = run("push", str(src), "drive:runs", "--delete")

    assert code == 0, err
    assert "--delete: removing 4 items from drive:runs that are not in SRC (to the Drive " \
        "trash)" in err, err
    assert _summary(err) == "0 uploaded (0 B), 2 unchanged, 4 deleted (not local)", err
