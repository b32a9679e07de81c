"""A run folder marked through a Drive mount (attackpull35): the mark is the file
``.drivestage/run-folder`` in it, synced to Drive by the mount, and no property."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _drive_state import live_md5s
from _envs import env_local_retries  # noqa: F401  (the env fixture)
from _liar import liar_env  # noqa: F401  (fixtures)
from _proxy import Reply

LEFT = ("WARNING drivestage.extra: --delete leaves drive:runs/{} whole: it {} a run "
        "folder (its checkpoints are left to that run's own push)")


def _synced_run(emulator, rel: str) -> dict[str, str]:
    """``rel`` on Drive as a mount synced a run's push into it: its checkpoint pair and its
    mark file; the md5s of what it holds."""
    emulator.add_file(f"{rel}/.drivestage/run-folder", b"")
    emulator.add_file(f"{rel}/epoch_001.pt", os.urandom(3000))
    emulator.add_file(f"{rel}/epoch_001.json", b'{"epoch": 1}\n')
    return live_md5s(emulator, rel)


def _runs(tmp_path):
    runs = tmp_path / "runs"
    (runs / "exp2").mkdir(parents=True)
    for i in range(12):   # (enough that --delete's guard lets a folder go)
        (runs / "exp2" / f"log{i}.txt").write_text(f"{i}\n")
    return runs


def _id(emulator, parent: str, name: str) -> str:
    """The id of ``name`` in ``parent``, trashed or not."""
    top = emulator.find(parent)["id"]
    return next(f["id"] for f in emulator.files() if f["title"] == name
                and any(p["id"] == top for p in f.get("parents") or []))


def _asked_for_marks(emulator) -> list[str]:
    return [r.query.get("q", "") for r in emulator.requests
            if r.kind == "files.list" and ".drivestage" in str(r.query.get("q", ""))]


@pytest.mark.parametrize("permanently", [False, True])
def test_push_delete_leaves_a_run_folder_a_mount_marked(emulator, env, tmp_path, permanently):
    """Machine A's run pushed ``./runs/exp1`` to ``/content/drive/MyDrive/runs/exp1``: Drive
    holds ``runs/exp1`` with ``.drivestage/run-folder`` and its checkpoints, no property.
    Machine B's ``push ./runs drive:runs --delete`` (its runs lacks exp1) trashed exp1 whole
    (``--delete-permanently``: deleted it). It is left, and the push says why."""
    on_drive = _synced_run(emulator, "runs/exp1")
    flag = "--delete-permanently" if permanently else "--delete"

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", flag)

    assert code == 0, err
    assert live_md5s(emulator, "runs/exp1") == on_drive, err
    assert LEFT.format("exp1", "is") in err.splitlines(), err


def test_push_delete_leaves_a_folder_holding_a_mount_marked_run(emulator, env, tmp_path):
    """``runs/old`` (B's runs lacks it) holds ``exp1``, marked through a mount: removing
    ``old`` took the run with it. ``old`` is left whole, and said so."""
    on_drive = _synced_run(emulator, "runs/old/exp1")
    emulator.add_file("runs/old/notes.txt", b"n\n")

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert live_md5s(emulator, "runs/old/exp1") == on_drive, err
    assert "notes.txt" in live_md5s(emulator, "runs/old")
    assert LEFT.format("old", "holds drive:runs/old/exp1,") in err.splitlines(), err


def test_push_delete_still_removes_an_unmarked_folder_and_a_plain_push_asks_nothing(
        emulator, env, tmp_path):
    """What the mount's mark costs: nothing on a push without --delete; on --delete, a
    listing by name of each folder it would remove (and nothing is kept that is no run)."""
    emulator.add_file("runs/junk/a.txt", b"a\n")
    emulator.add_file("runs/junk/.drivestage/other", b"x\n")   # a state folder, no mark
    runs = _runs(tmp_path)

    code, _, err = run("push", str(runs), "drive:runs")
    assert code == 0, err
    assert _asked_for_marks(emulator) == []

    emulator.clear_requests()
    code, _, err = run("push", str(runs), "drive:runs", "--delete")
    assert code == 0, err
    assert "junk" not in live_md5s(emulator, "runs"), err
    runs_id, junk_id = emulator.find("runs")["id"], _id(emulator, "runs", "junk")
    state_id = next(f["id"] for f in emulator.files() if f["title"] == ".drivestage"
                    and any(p["id"] == junk_id for p in f.get("parents") or []))
    # DEST itself (a run folder? --delete would leave its checkpoints) and junk at the plan:
    # a listing by name each; just before junk's removal (seen36), its children (with their
    # properties, md5s and dates: lag36 holds them against the count's), of which
    # .drivestage: its run-folder, as at the plan.
    assert _asked_for_marks(emulator) == [f"'{i}' in parents and trashed=false and "
                                          "title='.drivestage'" for i in (runs_id, junk_id)]
    asked = [r.query.get("q") for r in emulator.requests if r.kind == "files.list"
             and (junk_id in str(r.query.get("q")) or state_id in str(r.query.get("q")))]
    assert asked == [f"'{junk_id}' in parents and trashed=false and title='.drivestage'",
                     f"'{state_id}' in parents and trashed=false and title='run-folder'",
                     f"'{junk_id}' in parents and trashed=false",   # (the count)
                     f"'{state_id}' in parents and trashed=false",
                     f"'{junk_id}' in parents and trashed=false",   # (the re-check)
                     f"'{state_id}' in parents and trashed=false and title='run-folder'"]


def test_a_folder_a_mount_marked_while_the_push_sent_its_files_is_not_trashed(
        emulator, proxy, liar_env, tmp_path):
    """``runs/exp9`` (made by hand, notes in it) is to go whole once the push's files are
    verified; while they were sent, a run on another machine began there through a Drive
    mount: its mark file and first checkpoint synced in. The push trashed exp9 with them.
    It is read again just before its removal: left, said once."""
    emulator.add_file("runs/exp9/notes.txt", b"n\n")
    started: list[int] = []

    def meanwhile(status, headers, body):
        if not started:   # machine A's run, synced by its mount as the first upload starts
            started.append(status)
            _synced_run(emulator, "runs/exp9")
        return Reply(status, headers, [body])
    proxy.on("POST", r"uploadType=resumable", meanwhile)

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert started
    assert set(live_md5s(emulator, "runs/exp9")) == {"notes.txt", ".drivestage",
                                                     "epoch_001.pt", "epoch_001.json"}, err
    warned = [line for line in err.splitlines() if line.startswith("WARNING")
              and "exp9" in line]
    assert warned == ["WARNING drivestage.drive.store: drive:runs/exp9 was marked a run "
                      "folder on Drive since it was listed (its .drivestage/run-folder, "
                      "synced by a Drive mount); not deleted"], err


def test_runs_forget_clears_a_mount_mark_too(emulator, env, tmp_path):
    """``runs forget drive:runs/exp1`` on a folder a mount marked said "its mark on Drive
    cleared" and left the mark file: the folder stayed a run folder to every --delete. The
    file goes to the trash; the next --delete removes the folder as any other."""
    _synced_run(emulator, "runs/exp1")

    code, out, err = run("runs", "forget", "drive:runs/exp1")
    assert code == 0, err
    assert out == "drive:runs/exp1 is no run folder any more: its mark on Drive cleared\n"
    assert set(live_md5s(emulator, "runs/exp1/.drivestage")) == set(), "mark file kept"

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete")
    assert code == 0, err
    assert "exp1" not in live_md5s(emulator, "runs"), err
