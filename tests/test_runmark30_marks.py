"""Run folders marked on Drive (runmark30): ``drivestage mirror ./runs drive:runs --delete``
on a fresh Colab VM (no state folder, only the new run on the disk) trashed every older run
folder whole, checkpoints and all: only this machine's ``run-folders.json`` knew them. A run
folder now carries a PRIVATE and a PUBLIC custom property on Drive, sent with its insert (no
request more) or set on an older one by a properties.insert each; another app's PRIVATE one marks nothing,
the PUBLIC one marks for every app (Colab's OAuth client and a laptop's own see none of each
other's PRIVATE ones)."""
from __future__ import annotations

import logging

import pytest

from drivestage import run_folders
from drivestage.drive.resources import RUN_MARK
from drivestage.mirror import Mirror
from trainer.drive import DriveFolder, retention_policy

from _cli import run
from _drive_state import live_md5s
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)

LOGS = ("results.csv", "events.out.tfevents.1", "opt.yaml", "loss.png")
OURS = [{"key": RUN_MARK, "value": "1", "visibility": "PRIVATE", "app": "app-default"},
        {"key": RUN_MARK, "value": "1", "visibility": "PUBLIC", "app": None}]


def marks_of(emulator, file_id: str) -> list[dict]:
    """``emulator.properties_of(file_id)``'s run marks in OURS's order (a mark set on a folder
    made before inserts its PUBLIC property first; Drive's order means nothing). Not the
    made mark every folder drivestage makes carries (drive.made_mark: clockmark51)."""
    return sorted((p for p in emulator.properties_of(file_id) if p["key"] == RUN_MARK),
                  key=lambda p: (p["key"], p["visibility"]))


def _old_runs(emulator, tmp_path) -> dict:
    """exp1 and exp2 pushed by their runs on an old VM (the trainer's DriveFolder), beside a
    folder and a file on Drive that are no run's; what Drive holds in each run folder."""
    for name in ("exp1", "exp2"):
        folder = tmp_path / "old-vm" / name
        folder.mkdir(parents=True)
        for epoch in (1, 2):
            _save(str(folder), epoch)
        (folder / "results.csv").write_text("epoch\n")
        DriveFolder(f"drive:runs/{name}", str(folder), retention_policy(0, 0, None)).push()
    emulator.add_file("runs/junk/old.txt", b"old\n")
    emulator.add_file("runs/notes.txt", b"n\n")
    return {name: live_md5s(emulator, f"runs/{name}") for name in ("exp1", "exp2")}


def _fresh_vm(tmp_path, monkeypatch):
    """A new machine: an empty state folder, and only exp3 on the disk (its logs: files
    enough that ``--delete``'s guard, twice SRC's files plus 10, lets the deletions by)."""
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "fresh-state"))
    runs = tmp_path / "runs"
    (runs / "exp3").mkdir(parents=True)
    for name in LOGS:
        (runs / "exp3" / name).write_text(f"{name}\n")
    return runs


def _mirror_once(runs) -> None:
    mirror = Mirror(str(runs), "drive:runs", delete=True)
    try:
        mirror.flush(60)
    finally:
        mirror.stop(60, flush=False)


def test_a_fresh_vms_mirror_delete_leaves_the_old_run_folders_whole(emulator, env, tmp_path,
                                                                    monkeypatch):
    before = _old_runs(emulator, tmp_path)
    runs = _fresh_vm(tmp_path, monkeypatch)

    _mirror_once(runs)

    assert set(live_md5s(emulator, "runs")) == {"exp1", "exp2", "exp3"}
    assert {name: live_md5s(emulator, f"runs/{name}") for name in before} == before
    assert set(live_md5s(emulator, "runs/exp3")) == set(LOGS)
    assert set(before["exp1"]) == {"epoch_001.pt", "epoch_001.json", "epoch_002.pt",
                                   "epoch_002.json", "results.csv"}
    # The folder SRC lacks that no run marked went, and the file: what --delete asks.
    trashed = {f["title"] for f in emulator.files() if f["labels"]["trashed"]}
    assert {"junk", "notes.txt"} <= trashed


def test_a_fresh_vms_mirror_delete_leaves_a_folder_holding_a_marked_run_folder_whole(
        emulator, env, tmp_path, monkeypatch):
    """exp2 moved on Drive into ``runs/archive`` (the web UI): the folder SRC lacks that
    holds it is left whole, what else it holds with it (runfold29's rule, by the mark)."""
    before = _old_runs(emulator, tmp_path)
    archive = emulator.add_folder("runs/archive")
    emulator.add_file("runs/archive/old.txt", b"old\n")
    emulator.store.update_meta(emulator.find("runs/exp2")["id"], {"parents": [{"id": archive}]})
    runs = _fresh_vm(tmp_path, monkeypatch)

    _mirror_once(runs)

    assert set(live_md5s(emulator, "runs")) == {"archive", "exp1", "exp3"}
    assert set(live_md5s(emulator, "runs/archive")) == {"exp2", "old.txt"}
    assert live_md5s(emulator, "runs/archive/exp2") == before["exp2"]


def test_a_fresh_vms_push_delete_into_a_marked_run_folder_keeps_its_checkpoints(
        emulator, env, tmp_path, monkeypatch):
    """``push ./runs/exp1 drive:runs/exp1 --delete`` on a machine with no record: the run's
    checkpoints and sidecars stay (its retention's), a stale file goes."""
    before = _old_runs(emulator, tmp_path)
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "fresh-state"))
    emulator.add_file("runs/exp1/stale.txt", b"stale\n")
    exp1 = tmp_path / "exp1"
    exp1.mkdir()
    (exp1 / "results.csv").write_text("epoch\n")

    code, _, err = run("push", str(exp1), "drive:runs/exp1", "--delete")

    assert code == 0, err
    assert live_md5s(emulator, "runs/exp1") == before["exp1"]
    assert "drive:runs/exp1 is a run folder (marked on Drive by its run's push, with its own " \
        "retention): --delete removes none of its checkpoints or their sidecars" in err


def test_another_apps_private_property_of_the_name_is_no_mark(emulator, env, tmp_path,
                                                              monkeypatch):
    """Another app's PRIVATE property (this app never sees it): the folder is not a run
    folder, and a ``--delete`` that SRC lacks it removes it, as asked."""
    emulator.add_file("runs/exp1/epoch_001.pt", b"w" * 100)
    emulator.set_properties(emulator.find("runs/exp1")["id"],
                            [{"key": RUN_MARK, "value": "1", "visibility": "PRIVATE"}],
                            app="another-app")
    runs = _fresh_vm(tmp_path, monkeypatch)

    _mirror_once(runs)

    assert set(live_md5s(emulator, "runs")) == {"exp3"}


def test_a_laptop_with_its_own_oauth_client_leaves_the_colab_runs_folders_whole(
        emulator, env, tmp_path, monkeypatch):
    """The runs pushed from Colab (Colab's OAuth client), then ``mirror ./runs drive:runs
    --delete`` from a laptop signed in with its own client secrets, no record of them: the
    laptop sees none of Colab's PRIVATE properties, and trashed exp1 and exp2 whole with
    their checkpoints (the PRIVATE mark alone). The PUBLIC one keeps them."""
    before = _old_runs(emulator, tmp_path)
    emulator.set_token_app("test-token", "laptop-client")   # (the token every request sends)
    runs = _fresh_vm(tmp_path, monkeypatch)

    _mirror_once(runs)

    assert set(live_md5s(emulator, "runs")) == {"exp1", "exp2", "exp3"}
    assert {name: live_md5s(emulator, f"runs/{name}") for name in before} == before
    trashed = {f["title"] for f in emulator.files() if f["labels"]["trashed"]}
    assert {"junk", "notes.txt"} <= trashed and not {"exp1", "exp2"} & trashed


def test_runs_forget_from_another_client_clears_what_it_sees(emulator, env, tmp_path,
                                                            monkeypatch):
    """``runs forget`` on the laptop (its own client): the PUBLIC mark goes, Colab's PRIVATE
    one stays for Colab (only that client may change it), and the laptop's ``--delete`` then
    removes the folder as asked."""
    _old_runs(emulator, tmp_path)
    exp1 = emulator.find("runs/exp1")["id"]
    emulator.set_token_app("test-token", "laptop-client")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "laptop-state"))

    code, out, err = run("runs", "forget", "drive:runs/exp1")

    assert (code, err) == (0, "")
    assert out == "drive:runs/exp1 is no run folder any more: its mark on Drive cleared\n"
    assert marks_of(emulator, exp1) == OURS[:1]   # (Colab's, "app-default")
    runs = _fresh_vm(tmp_path, monkeypatch)
    _mirror_once(runs)
    assert set(live_md5s(emulator, "runs")) == {"exp2", "exp3"}


def test_a_public_mark_anyone_set_only_keeps_the_folder(emulator, env, tmp_path, monkeypatch):
    """A PUBLIC property of the name that no run of ours set (any editor may set one): the
    folder is kept, as a run folder would be, and nothing is lost; ``runs forget`` is the way
    out."""
    emulator.add_file("runs/exp1/epoch_001.pt", b"w" * 100)
    folder = emulator.find("runs/exp1")["id"]
    emulator.set_properties(folder, [{"key": RUN_MARK, "value": "1", "visibility": "PUBLIC"}])
    runs = _fresh_vm(tmp_path, monkeypatch)

    _mirror_once(runs)
    assert set(live_md5s(emulator, "runs")) == {"exp1", "exp3"}
    assert set(live_md5s(emulator, "runs/exp1")) == {"epoch_001.pt"}

    assert run("runs", "forget", "drive:runs/exp1")[0] == 0
    assert emulator.properties_of(folder) == []
    _mirror_once(runs)
    assert set(live_md5s(emulator, "runs")) == {"exp3"}


def test_a_new_run_folder_is_made_marked_with_no_request_more(emulator, env, tmp_path):
    folder = tmp_path / "exp1"
    folder.mkdir()
    _save(str(folder), 1)
    emulator.clear_requests()

    DriveFolder("drive:runs/exp1", str(folder), retention_policy(0, 0, None)).push()

    made = emulator.find("runs/exp1")
    assert marks_of(emulator, made["id"]) == OURS
    calls = emulator.api_calls()
    # What the first push made before marks were (the folders' inserts carry it; and since
    # pushgap47 its folder listed once more after the uploads, for a folder made at a new
    # name meanwhile).
    assert calls == {"files.list": 5 + 1, "files.insert": 4, "files.get": 4, "media.upload": 2,
                     "files.generateIds": 1, "about.get": 1}, calls
    # A plain push makes no mark: a folder is a run folder by its run's push only.
    emulator.clear_requests()
    assert run("push", str(folder), "drive:data/exp1")[0] == 0
    assert marks_of(emulator, emulator.find("data/exp1")["id"]) == []
    assert "properties.insert" not in emulator.api_calls()


def test_an_older_run_folder_is_marked_once(emulator, env, tmp_path):
    """A run folder recorded here by a drivestage that made no marks: the first push of
    the folder above marks it (a properties.insert each of its PRIVATE and PUBLIC mark);
    no push after marks it again, nor does the run's own push, which finds it marked."""
    folder = tmp_path / "runs" / "exp1"
    folder.mkdir(parents=True)
    _save(str(folder), 1)
    DriveFolder("drive:runs/exp1", str(folder), retention_policy(0, 0, None)).push()
    exp1 = emulator.find("runs/exp1")["id"]
    emulator.store.set_properties(exp1, [])   # (as an older drivestage left it)
    emulator.clear_requests()

    for _ in range(2):
        code, _, err = run("push", str(tmp_path / "runs"), "drive:runs")
        assert code == 0, err
    DriveFolder("drive:runs/exp1", str(folder), retention_policy(0, 0, None)).push()

    assert [r.kind for r in emulator.requests if r.kind.startswith("properties.")
            or r.kind == "files.patch"] == ["properties.insert"] * 2
    assert marks_of(emulator, exp1) == OURS


def test_a_run_push_into_an_older_folder_marks_it_once(emulator, env, tmp_path):
    """The run's own push into a folder made before marks (by hand, or an older version):
    its two marks, at its first push only."""
    emulator.add_folder("runs/exp1")
    folder = tmp_path / "exp1"
    folder.mkdir()
    drive = DriveFolder("drive:runs/exp1", str(folder), retention_policy(0, 0, None))
    emulator.clear_requests()
    for epoch in (1, 2):
        _save(str(folder), epoch)
        drive.push()
    assert emulator.api_calls("properties.insert") == 2
    assert marks_of(emulator, emulator.find("runs/exp1")["id"]) == OURS


def test_runs_forget_clears_the_mark_and_the_record(emulator, env, tmp_path, monkeypatch):
    """A run folder protected for ever needs a way out: ``drivestage runs forget``. After
    it, a fresh VM's ``--delete`` removes the folder as any other."""
    _old_runs(emulator, tmp_path)
    exp1 = emulator.find("runs/exp1")["id"]
    assert run_folders._file().read()   # (this machine's record of exp1 and exp2)

    code, out, err = run("runs", "forget", "drive:runs/exp1")

    assert (code, err) == (0, "")
    assert out == "drive:runs/exp1 is no run folder any more: its mark on Drive cleared, " \
                  "this machine's record of it removed\n"
    assert marks_of(emulator, exp1) == []
    assert len(run_folders._file().read()) == 1
    code, out, _ = run("runs", "forget", "drive:runs/exp1")
    assert (code, out) == (0, "drive:runs/exp1 was no run folder: no mark on Drive, no record "
                              "on this machine\n")
    runs = _fresh_vm(tmp_path, monkeypatch)
    _mirror_once(runs)
    assert set(live_md5s(emulator, "runs")) == {"exp2", "exp3"}


def test_a_mark_drive_refuses_is_said_once_and_the_push_goes_on(emulator, env, tmp_path,
                                                                 caplog):
    folder_id = emulator.add_folder("runs/exp1")
    emulator.faults.inject(method="POST", path=f"{folder_id}/properties", status=403,
                           reason="insufficientFilePermissions", times=None)
    folder = tmp_path / "exp1"
    folder.mkdir()
    drive = DriveFolder("drive:runs/exp1", str(folder), retention_policy(0, 0, None))
    with caplog.at_level(logging.WARNING):
        for epoch in (1, 2):
            _save(str(folder), epoch)
            drive.push()

    assert set(live_md5s(emulator, "runs/exp1")) == {"epoch_001.pt", "epoch_001.json",
                                                     "epoch_002.pt", "epoch_002.json"}
    said = [r.getMessage() for r in caplog.records if "could not mark" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith("could not mark drive:runs/exp1 as a run folder on the store (")
    assert said[0].endswith("): only this machine knows it is one; a push of a folder above "
                            "it with --delete from another machine would remove it")
    assert emulator.api_calls("properties.insert") == 1   # the PRIVATE one, refused
    assert run_folders._file().read()   # the record on this machine still holds
