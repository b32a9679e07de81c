"""Messages polish21 added, each made to happen as users meet it (see tests/_messages.py)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from _messages import error_line, renders, shown
from drivestage.cli import cli

from test_messages_dedupe import folder, live, md5, put, trashed


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.stdout, r.stderr


@renders("was gone when dedupe came to it (deleted or trashed meanwhile, by someone or "
         "something else): …")
def test_an_item_deleted_meanwhile_is_skipped_and_said_and_the_rest_merged(emulator, store):
    """The listing still shows a.txt (deleted a moment ago by someone else, Drive's listing
    lagging): its move answers 404. A files.get says it is gone: it is skipped, said so, the
    rest merged and the emptied folder trashed; exit 1 names it."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    gone = put(emulator, store, new, "a.txt", b"deleted meanwhile")
    copy = put(emulator, store, new, "c.txt", b"same")
    put(emulator, store, old, "c.txt", b"same")
    put(emulator, store, new, "b.txt", b"b")
    emulator.faults.lag_listing(deleted=5, titles=r"^a\.txt$")
    store.drive.CreateFile({"id": gone}).Delete()
    code, out, err = run("dedupe", "drive:runs/exp")
    emulator.faults.lag_listing()
    assert code == 1, err
    shown("was gone when dedupe came to it (deleted or trashed meanwhile, by someone or "
          "something else): …", error_line(err))
    assert error_line(err) == (
        f"Error: 1 item was gone when dedupe came to it (deleted or trashed meanwhile, by "
        f"someone or something else): drive:runs/exp/a.txt (in id {new}); everything else "
        "was merged. Look in Drive's trash if it was not meant to go")
    assert "1 gone meanwhile" in err
    assert out == f"merged: drive:runs/exp (id {new}) into the oldest (id {old})\n"
    assert copy in trashed(emulator) and new in trashed(emulator)
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"],
                              "runs/exp/b.txt": [md5(b"b")], "runs/exp/c.txt": [md5(b"same")]}
