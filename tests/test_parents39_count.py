"""parents39: the "--delete: removing N items" line is said before the checks made just
before each removal, which may leave items (changed on Drive since the listing; also in a
folder the plan's listing did not show). It counted those too (attackout38: 2 items, 1
removed). Now, where some were left, a line after the removals says how many went.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP, a listing that
leaves ``parents`` out: ``emulator.list_leaves_out``). No sleeps."""
from __future__ import annotations

from _cli import run
from test_attackout38_lying import DEST
from test_attacksync36_walk import _parents
from test_outside38_delete import _ids, _src, _trashed


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "WARNING" in line and (
        "--delete" in line or "was not deleted" in line)]


def test_the_items_left_at_removal_time_are_not_counted_as_removed(
        emulator, local_state, drive_env, tmp_path):
    emulator.add_file("runs/stray.txt", b"stray\n")
    emulator.add_file("runs/old/a.txt", b"a\n")
    emulator.add_file("Docs/report.pdf", b"%PDF a report\n")
    _parents(emulator, "Docs/report.pdf", "runs")
    emulator.list_leaves_out = {"parents"}
    ids = _ids(emulator, "Docs/report.pdf", "runs/stray.txt", "runs/old")

    code, _, err = run("push", str(_src(tmp_path)), DEST(emulator), "--delete")

    assert code == 0, err
    assert _trashed(emulator, ids) == {"Docs/report.pdf": False, "runs/stray.txt": True,
                                       "runs/old": True}, err
    dest = DEST(emulator)
    assert _lines(err) == [
        f"WARNING drivestage.extra: --delete: removing 4 items from {dest} that are not in "
        "SRC (to the Drive trash)",
        f"WARNING drivestage.drive.store: {dest}/report.pdf was not deleted: it is also in "
        "another folder (an item with two parents, kept from before 2020), and its removal "
        f"would take it from there too. Take it out of {dest} on Drive (it stays in its other "
        "folder) to let it go",
        f"WARNING drivestage.extra: --delete: removed 3 of those 4 items from {dest}; 1 was "
        "left in place (the lines above say why)"], err


def test_nothing_more_is_said_where_everything_counted_went(emulator, local_state,
                                                             drive_env, tmp_path):
    emulator.add_file("runs/stray.txt", b"stray\n")
    emulator.add_file("runs/old/a.txt", b"a\n")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert _lines(err) == [
        "WARNING drivestage.extra: --delete: removing 3 items from drive:runs that are not in "
        "SRC (to the Drive trash)"], err
