"""pushlefts48 (1): a Drive folder made at a file's name *after* the last listing of the send
that put the file there (during a sidecar's upload, after push's post-send listing; after the
trainer's lone send listed the folder for the last time). Drive has no "make it unless the
name is taken", so that send still ends with the folder and the file side by side. What the
user is owed then: every later reader says it, in one line naming both and what to do, and
takes neither for the other. Before, the next push (and the trainer's next send) said the
name "exists and is a folder, not a file; … cannot be sent there", of a file that was there;
now they say a folder and a file share it. A pull refuses the name; the resume goes on from
the file, never from the folder; ``push --delete`` removes the folder and keeps the file.

The real CLI, DriveFolder and stack against the emulator behind tests/_proxy.py, whose hooks
make the folder at the very request (the sidecar's upload session; the answer to the send's
last listing): no sleeps."""
from __future__ import annotations

import json
import os
import threading

import pytest

from _checkpoints import md5, save
from _cli import run
from _drive_state import live_md5s
from _envs import penv  # noqa: F401  (a fixture)
from drivestage.errors import DriveStageError, NameSharedError
from test_lastkeep32_drive import SPEC
from test_messages_attack18 import _tiny_state
from trainer import checkpoint as ckpt

FOLDER = SPEC.split(":", 1)[1]


def _at_upload_of(proxy, title: str, act) -> list:
    """Run ``act`` once, as the upload session of a file named ``title`` starts (its POST
    reaches the emulator after ``act``): the list gets its result."""
    done: list = []
    once = threading.Lock()

    def meanwhile(body: bytes) -> bytes:
        try:
            meta = json.loads(body or b"{}")
        except ValueError:
            return body
        with once:
            if isinstance(meta, dict) and meta.get("title") == title and not done:
                done.append(act())
        return body
    proxy.mangle("POST", r"uploadType=resumable", meanwhile)
    return done


def _live(emulator) -> set[str]:
    """The names of the live items in the run's Drive folder (none while it is not made)."""
    top = emulator.find(FOLDER)
    if top is None:
        return set()
    return {c["title"] for c in emulator.store.children(top["id"]) if not c.get("trashed")}


def test_a_folder_made_during_a_sidecars_upload_is_said_by_the_next_push_and_pull(
        emulator, penv, proxy, tmp_path):
    """The folder ``epoch_002.pt`` made as ``epoch_002.json`` starts (after push's listing
    of the folders it made new names in): that push ends 0 with both on Drive (the window
    Drive leaves). The next push says so in one line, exit 2, and changes nothing on Drive;
    a pull refuses the name (takes neither); ``push --delete`` removes the folder, the
    verified checkpoint stays."""
    src = tmp_path / "run"
    old = save(str(src), "epoch_001", 1, 1_000_000)
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    new = save(str(src), "epoch_002", 2, 1_000_100)
    made = _at_upload_of(proxy, "epoch_002.json",
                         lambda: emulator.add_folder("runs/a/epoch_002.pt"))
    code, _, err = run("push", str(src), "drive:runs/a")
    assert made, "the folder was never made during the sidecar's upload"
    assert code == 0, err
    both = {**old, **new, "epoch_002.pt": sorted([None, *new["epoch_002.pt"]], key=str)}
    assert live_md5s(emulator, "runs/a") == both
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 1, err   # (that name alone not sent, the rest pushed: pushshared48)
    assert err.strip().splitlines()[-1] == (
        "Error: 1 file of SRC not sent: a folder on Drive has its name (the line above names "
        "it); everything else was pushed, and nothing at that name on Drive was removed; push "
        "again once the folder is renamed"), err
    assert [ln for ln in err.splitlines() if "holds a folder and a file" in ln][0].endswith(
        f"drive:runs/a holds a folder and a file both named epoch_002.pt (the folder "
        f"made there while the file was sent?): a pull refuses that name until one of them "
        f"goes, and {src}/epoch_002.pt is not sent again; rename or remove the folder on "
        f"Drive, or push with --delete to remove it"), err
    assert live_md5s(emulator, "runs/a") == both
    code, _, err = run("pull", "drive:runs/a", str(tmp_path / "pulled"))
    assert code == 1, err
    assert "drive:runs/a/epoch_002.pt names 2 items" in err.strip().splitlines()[-1], err
    assert not os.path.exists(tmp_path / "pulled" / "epoch_002.pt")
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {**old, **new}


def test_the_trainers_lone_send_then_resume_and_next_send(emulator, through, tmp_path, caplog):
    """The trainer's lone send of ``epoch_002``, the folder ``epoch_002.pt`` made on Drive
    as the send's last listing is answered: the send ends verified (the window). The resume
    then goes on from the file (its bytes, never the folder), and the next lone send of that
    name, and the run's next push, say a folder and a file share it, in the trainer's words
    (never push's ``--delete``: over the run folder it would remove the checkpoints
    ``train.keep_local`` left on Drive alone), sending nothing."""
    from trainer.drive import DriveFolder

    path = ckpt.save_checkpoint(_tiny_state(2), str(tmp_path / "logs" / "epoch_002.pt"))
    with open(path, "rb") as fh:
        data = fh.read()
    drive = DriveFolder(SPEC, str(tmp_path / "logs"))
    made: list = []

    def after_listing(status, headers, body):
        from _proxy import Reply
        if not made and "epoch_002.json" in _live(emulator):   # (the listing after the sidecar's upload)
            made.append(emulator.add_folder(f"{FOLDER}/epoch_002.pt"))
        return Reply(status, headers, [body])
    rule = through.on("GET", r"/files\?.*q=", after_listing)
    drive.send_alone([path, ckpt.sidecar_path(path)])
    through.rules.remove(rule)
    assert made, "the folder was never made after the send's last listing"
    found = DriveFolder(SPEC, str(tmp_path / "other")).checkpoints()
    assert [(c.entry.name, c.entry.md5) for c in found] == [("epoch_002.pt", md5(data))]
    with pytest.raises(NameSharedError) as refused:
        drive.send_alone([path, ckpt.sidecar_path(path)])
    assert str(refused.value) == (
        f"{SPEC} holds a folder and a file both named epoch_002.pt (the folder made there "
        f"while the file was sent?): a pull refuses that name until one of them goes, and "
        f"this run's epoch_002.pt is not sent again; rename that folder on Drive")
    with pytest.raises(DriveStageError) as refused:   # (the run's next push: no --delete)
        drive.push()
    assert str(refused.value) == (
        "1 file of SRC not sent: a folder on Drive has its name (the line above names it); "
        "everything else was pushed, and nothing at that name on Drive was removed; push again "
        "once the folder is renamed")
    assert [r.getMessage() for r in caplog.records if "holds a folder" in r.getMessage()] == [
        f"{SPEC} holds a folder and a file both named epoch_002.pt (the folder made there "
        f"while the file was sent?): a pull refuses that name until one of them goes, and "
        f"{path} is not sent again; rename that folder on Drive"]
    assert sorted(live_md5s(emulator, FOLDER)) == ["epoch_002.json", "epoch_002.pt"]
    assert sorted(live_md5s(emulator, FOLDER)["epoch_002.pt"], key=str) == [None, md5(data)]


def test_the_runs_push_over_a_drive_folder_at_a_save_name_never_advises_delete(
        emulator, through, tmp_path, caplog):
    """A folder alone at a save's name on Drive (made before the push): the run's push was
    refused with push's advice, ``push with --delete to replace the folder``, which over the
    run folder removes the checkpoints ``train.keep_local`` left on Drive alone. Now the
    trainer's words, as its lone send says them."""
    from drivestage.errors import FolderInTheWayError
    from trainer.drive import DriveFolder

    path = ckpt.save_checkpoint(_tiny_state(3), str(tmp_path / "logs" / "epoch_003.pt"))
    emulator.add_folder(f"{FOLDER}/epoch_003.pt")
    with pytest.raises(DriveStageError) as refused:   # (that name alone: pushshared48)
        DriveFolder(SPEC, str(tmp_path / "logs")).push()
    assert not isinstance(refused.value, FolderInTheWayError)
    assert "1 file of SRC not sent: a folder on Drive has its name" in str(refused.value)
    assert [r.getMessage() for r in caplog.records if "is a folder" in r.getMessage()] == [
        f"{SPEC}/epoch_003.pt exists and is a folder, not a file; {path} cannot be sent "
        f"there: rename that folder on Drive"]
