"""A push into a folder reached through a shortcut that sits inside that folder, or below it:
the folders above DEST, climbed from the shortcut's parent, come back to DEST itself.

push27's tree lock holds the folders above DEST shared and DEST exclusive. Climbed that way,
DEST was among the folders "above" it: the push held its own lock shared and then waited for
it exclusively, for good (`test_attack_drive`'s push into a shortcut to the top of My Drive
hung until the test's timeout)."""
from __future__ import annotations
from _envs import env  # noqa: F401  (a fixture)
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)

import os
import subprocess

import pytest

from drivestage.drive import connect


def _push(tmp_path, dest: str) -> subprocess.CompletedProcess:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "a.txt").write_bytes(b"a")
    # A child process: a hang is ended by the timeout, not left holding locks in this one.
    return cli_server().run(["push", str(src), dest],
                            text=True, timeout=120, env=dict(os.environ))


@pytest.mark.parametrize("where", ["inside", "below"])
def test_a_push_through_a_shortcut_inside_its_own_folder_ends(emulator, env, tmp_path, where):
    top = emulator.add_folder("course")
    at = "course" if where == "inside" else "course/sub"
    if where == "below":
        emulator.add_folder(at)
    emulator.add_shortcut(f"{at}/back", top)
    res = _push(tmp_path, f"drive:{at}/back")
    assert res.returncode == 0, res.stderr
    files = [f for f in emulator.files() if f["title"] == "a.txt"]
    assert [(f["parents"][0]["id"], emulator.read_bytes(f["id"])) for f in files] == [(top, b"a")]


def test_the_lineage_of_a_folder_reached_through_a_shortcut_has_each_folder_once(emulator,
                                                                                  env):
    top = emulator.add_folder("course")
    emulator.add_folder("course/sub")
    emulator.add_shortcut("course/sub/back", top)
    store = connect()
    places = [place for place, _ in store.lineage(store.resolve("course/sub/back"))]
    # course's own: course, then the top of My Drive (the shortcut's folder is below it).
    assert places == [place for place, _ in connect().lineage(store.resolve("course"))]
    assert len(places) == 2, places
