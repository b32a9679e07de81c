"""The run-folder mark read back after it is set, by attacksync33."""
from __future__ import annotations

import json

from _cli import run
from _liar import liar_env  # noqa: F401  (fixtures)
from _proxy import Reply
from test_attackds29_run_folders import _save
from test_runmark30_marks import OURS, marks_of


def _kept_nothing(status, headers, body):
    """properties.insert answered as Drive answers it (the property), and nothing kept."""
    prop = json.loads(body or b"{}") or {"key": "drivestage-run-folder", "value": "1"}
    data = json.dumps(dict(prop, kind="drive#property")).encode()
    return Reply(200, {"Content-Type": "application/json", "Content-Length": str(len(data))},
                 [data])


def test_a_mark_the_server_answered_but_did_not_keep_is_said_and_set_at_the_next_push(
        emulator, proxy, liar_env, tmp_path):
    """A run into a folder made before it, behind a proxy (or a server not Drive) that
    answered each properties.insert of the mark 200 and kept nothing: the push said
    nothing, the folder stayed unmarked (so a fresh VM's ``mirror ./runs drive:runs
    --delete`` trashed the run), and no later push of the process tried again. The folder is
    read back: the push says the mark is not there, and the next one sets it."""
    folder = emulator.add_folder("runs/exp1")
    run_dir = tmp_path / "exp1"
    run_dir.mkdir()
    _save(str(run_dir), 1)
    proxy.on("POST", rf"/files/{folder}/properties", _kept_nothing, times=2, forward=False)

    code, _, err = run("push", str(run_dir), "drive:runs/exp1", "--keep-last", "2")
    assert code == 0, err
    assert marks_of(emulator, folder) == []
    assert [line for line in err.splitlines() if "could not mark" in line] == [
        "WARNING drivestage.upload_tree: could not mark drive:runs/exp1 as a run folder on the store (Drive answered the "
        "PUBLIC mark's properties.insert on drive:runs/exp1, but the folder read back shows no "
        "such mark: check --api-root / DRIVESTAGE_API_ROOT and any proxy or cache between you "
        "and Drive): only this machine knows it is one; a push of a folder above it with "
        "--delete from another machine would remove it"]

    _save(str(run_dir), 2)
    code, _, err = run("push", str(run_dir), "drive:runs/exp1", "--keep-last", "2")
    assert code == 0, err
    assert "could not mark" not in err
    assert marks_of(emulator, folder) == OURS
