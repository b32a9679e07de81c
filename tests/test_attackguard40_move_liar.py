"""attackguard40: dedupe's move (files.update addParents + removeParents) answered
``parents: []`` by a server that moved the item (a liar: Drive never answers a move into a
folder with no folder at all). The merge stops there (nothing trashed with that answer),
and its line said "it is still in folders , not moved into …" (an empty list, and "the
server answered for another item"): it names the answer as it was now. Through the real
stack (the CLI in-process, PyDrive2, the emulator over HTTP)."""
from __future__ import annotations

from test_edges40_parents import _answers_no_folder
from test_messages_dedupe import folder, put, trashed
from test_messages_dedupe import run as run_dedupe


def test_a_move_answered_in_no_folder_stops_the_merge_with_a_line_that_says_so(
        emulator, store, env, drive_env, monkeypatch):
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "a.pt", b"a")
    moved = put(emulator, store, new, "b.pt", b"b")
    lying = _answers_no_folder(emulator, monkeypatch)

    code, _, err = run_dedupe("dedupe", "drive:runs/exp")

    assert lying == [moved], err
    assert code == 1, err
    assert new not in trashed(emulator), err    # (nothing done with that answer)
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"Error: move drive:runs/exp/b.pt: the server answered that it is "
                           f"in no folder, not moved into {old}; stopped, nothing done with "
                           "that answer."), err
