"""attackd51: a file renamed on Drive while its folder's pull runs (fuse51's look again).

fuse51 made a file that the second listing no longer holds (trashed, moved out of its
folder) fail the pull: the tree would hold a file the folder no longer does. A file renamed
in its folder was found by its id and passed (its bytes the same): exit 0, the tree holding
``x.txt`` where Drive's folder holds ``y.txt``, and the rerun staged ``y.txt`` beside it (pull
never deletes: the same bytes twice, a sample counted twice in a dataset). Two files whose
names were swapped passed alike: ``x.txt`` held the bytes Drive now calls ``y.txt``. Now a
file found by its id under another name is looked for at its own path: nothing there, it
went away (renamed, named so); another file there, that one is compared as a version.
Each rename is made while a file's download is held at its fifth byte (no sleeps). On main
136c4bb2 both pulls end exit 0.
"""
from __future__ import annotations


from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _held_pull import pull_while_held
from _messages import error_line


def test_a_file_renamed_during_the_pull_fails_it_named(emulator, env, tmp_path):
    emulator.add_file("run/a.txt", b"a" * 100)
    x_id = emulator.add_file("run/x.txt", b"x" * 100)
    code, _, err = pull_while_held(
        emulator, x_id, lambda: emulator.store.update_meta(x_id, {"title": "y.txt"}),
        tmp_path / "d")
    target = tmp_path / "d" / "run" / "x.txt"
    assert code == 1 and error_line(err) == (
        "Error: drive:run/x.txt went away on Drive while this pull ran (renamed to y.txt "
        "after the folder was listed: a run still writing there, its retention removing old "
        f"checkpoints?), after it was staged: {target} is a file the folder no longer holds. "
        "Pull again once the folder is settled, or pull a run's folder once its trainer has "
        "stopped"), err


def test_two_files_whose_names_were_swapped_fail_the_pull_as_changed(emulator, env, tmp_path):
    x_id = emulator.add_file("run/x.txt", b"x" * 100)
    y_id = emulator.add_file("run/y.txt", b"y" * 50)

    def swap() -> None:
        emulator.store.update_meta(x_id, {"title": "t.txt"})
        emulator.store.update_meta(y_id, {"title": "x.txt"})
        emulator.store.update_meta(x_id, {"title": "y.txt"})
    code, _, err = pull_while_held(emulator, y_id, swap, tmp_path / "d")
    assert code == 1 and error_line(err) == (
        "Error: drive:run/x.txt, drive:run/y.txt changed on Drive while this pull ran (a new "
        "version since the folder was listed): what it staged mixes files of before and after "
        "that change. Run again to stage the new version (only what changed is fetched)"), err
    # The rerun stages what Drive holds now at each path.
    assert run("pull", "-q", "drive:run", str(tmp_path / "d"))[0] == 0
    assert (tmp_path / "d" / "run" / "x.txt").read_bytes() == b"y" * 50
    assert (tmp_path / "d" / "run" / "y.txt").read_bytes() == b"x" * 100
