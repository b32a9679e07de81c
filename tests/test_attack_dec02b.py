"""Attacks on three changes of 2026-12-02: orphan sidecars retired by retention
(:mod:`drivestage.orphans`), the private copy of a sidecar a push sends
(:mod:`drivestage.sidecar_copy`), and pull --extract's update of a member that changed kind
(:mod:`drivestage.extract.owned`).

Through the real stack against the emulator (the CLI in-process); what is asserted is what
users rely on: the files left on Drive (name -> md5s), the exit code and the message."""
from __future__ import annotations

import json
import os
import tempfile

import pytest

from _checkpoints import RUN, md5, save
from _cli import ok, run
from _drive_state import live_md5s
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

FOLDER = "Models/logs"
T0 = 1764600000.0


def _live(emu) -> dict:
    return live_md5s(emu, FOLDER)


# ------------------------------------------------------------ the sidecar's private copy

def test_a_temp_folder_removed_under_a_long_lived_process_fails_the_push_and_loses_nothing(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    """A trainer's process runs for days; the temp folder Python chose at its first use
    (``$TMPDIR``, a job's scratch folder) is removed meanwhile. The push that sends last.pt
    saved again cannot make the sidecar's private copy: it must say so and exit 1 (not skip
    the sidecar as a file that "disappeared" and exit 0, every push after), keep the copy the
    sidecar on Drive vouches for, and the next push with a temp folder heals."""
    src = tmp_path / "run"
    first = save(str(src), "last", 1, T0)
    ok("push", str(src), f"drive:{FOLDER}")
    second = save(str(src), "last", 2, T0 + 60)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert tempfile.gettempdir() == str(scratch)   # chosen, and kept by Python from now on
    scratch.rmdir()
    code, out, err = run("push", str(src), f"drive:{FOLDER}")
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert lines == [f"Error: cannot write a private copy of {src / 'last.json'} into the "
                     f"temporary folder {scratch}: No such file or directory; set TMPDIR to a "
                     "writable folder with free space"], err
    live = _live(emulator)
    assert live["last.json"] == first["last.json"]
    assert sorted(live["last.pt"]) == sorted(first["last.pt"] + second["last.pt"])
    scratch.mkdir()
    ok("push", str(src), f"drive:{FOLDER}")
    assert _live(emulator) == second


# ------------------------------------------------------------ orphan sidecars

def _id(emu, name: str) -> str:
    return emu.find(f"{FOLDER}/{name}")["id"]


def _set_modified(emu, name: str, when: float) -> None:
    """Drive's modified time of ``name`` set as a client that keeps mtimes sets it."""
    import datetime

    iso = datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    emu.store.update_meta(_id(emu, name), {"modifiedDate": iso}, set_modified=True)


def _modified(emu, name: str) -> str:
    return emu.find(f"{FOLDER}/{name}")["modifiedDate"]


def _orphaned(emulator, tmp_path, run_id=RUN) -> tuple[dict, dict]:
    """Epoch 3 then epoch 4 pushed, epoch 3's checkpoint deleted as a killed retention leaves
    it. Returns (epoch 3's sidecar, epoch 4's two files) as Drive holds them."""
    src = tmp_path / "a"
    old = save(str(src), "epoch_003", 3, T0, run=run_id)
    ok("push", str(src), f"drive:{FOLDER}")
    new = save(str(src), "epoch_004", 4, T0 + 60, run=run_id)
    ok("push", str(src), f"drive:{FOLDER}")
    emulator.store.delete(_id(emulator, "epoch_003.pt"))
    return {"epoch_003.json": old["epoch_003.json"]}, new


def test_an_orphan_with_the_same_drive_time_as_its_runs_newer_checkpoint_is_kept(
        emulator, drive_env, local_state, tmp_path):
    """Drive's times of the orphan and of epoch 4's checkpoint equal (a client that sets
    modified times, or one clock tick): which arrived first is unknown, so it stays."""
    orphan, new = _orphaned(emulator, tmp_path)
    _set_modified(emulator, "epoch_003.json", T0 + 600)
    _set_modified(emulator, "epoch_004.pt", T0 + 600)
    assert _modified(emulator, "epoch_003.json") == _modified(emulator, "epoch_004.pt")
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _live(emulator) == {**orphan, **new}


def test_a_users_json_with_an_epoch_and_an_md5_beside_run_less_checkpoints_is_kept(
        emulator, drive_env, local_state, tmp_path):
    """A loop of the user's own (CheckpointSync: sidecars name no run) beside the user's
    ``epoch_002.json``: notes naming the epoch and the md5 of the dataset it trained on, no
    ``size``. Every sidecar drivestage ever wrote with an md5 has the checkpoint's size too;
    a JSON without one is the user's and stays."""
    notes = json.dumps({"epoch": 2, "md5": md5(b"VOC2012.tar"), "dataset": "VOC2012",
                        "note": "lr 0.01 diverged"}).encode()
    emulator.add_file(f"{FOLDER}/epoch_002.json", notes)
    src = tmp_path / "a"
    new = save(str(src), "epoch_004", 4, T0 + 60, run=None)
    ok("push", str(src), f"drive:{FOLDER}")
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    ok("push", str(src), f"drive:{FOLDER}", "--keep-last", "1", "--max-bytes", "1MB")
    assert _live(emulator) == {"epoch_002.json": [md5(notes)], **new}


def test_a_sidecar_that_reached_drive_first_with_an_older_mtime_then_its_checkpoint(
        emulator, drive_env, local_state, tmp_path):
    """Machine B's uploader keeps mtimes and sends the small file first (Drive for desktop,
    rclone): ``epoch_003.json`` reaches Drive with B's save time, before epoch 4 by Drive's
    times, while ``epoch_003.pt`` is still on its way. A prune then retires the sidecar (its
    checkpoint is one the policy deletes); when the checkpoint arrives, the next prune must
    not keep it for ever as a checkpoint no sidecar vouches for."""
    src_a, src_b = tmp_path / "a", tmp_path / "b"
    new = save(str(src_a), "epoch_004", 4, T0 + 60)
    ok("push", str(src_a), f"drive:{FOLDER}")
    save(str(src_b), "epoch_003", 3, T0)
    emulator.add_file(f"{FOLDER}/epoch_003.json", (src_b / "epoch_003.json").read_bytes())
    _set_modified(emulator, "epoch_003.json", T0)
    ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    emulator.add_file(f"{FOLDER}/epoch_003.pt", (src_b / "epoch_003.pt").read_bytes())
    _set_modified(emulator, "epoch_003.pt", T0)
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert _live(emulator) == new, out


# ------------------------------------------------------------ pull --extract, kind changes

def _kind_change_v1(emulator, dest, tmp_path, links: dict = {}):
    """v1 of d/v.zip (folder ds/a) staged into ``dest``; v2 (a file ds/a) put on Drive.
    Returns v2's bytes."""
    from test_extract_kind_change import FILE_V2, FOLDER_V1, a_zip, replace_on_drive

    emulator.add_file("d/v.zip", a_zip(FOLDER_V1, links))
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 0, err
    blob2 = a_zip(FILE_V2)
    replace_on_drive("d/v.zip", blob2, tmp_path)
    return blob2


def _stamp(dest):
    [name] = [n for n in os.listdir(dest / ".drivestage") if n.startswith("v.zip@")
              and n.endswith(".json")]
    return dest / ".drivestage" / name


@pytest.mark.parametrize("claim", ["path only", "as a folder", "every field but the inode"])
def test_a_stamp_edited_to_claim_the_users_file_never_gets_it_deleted(
        emulator, drive_env, tmp_path, claim):
    """The user's ``ds/a/mine.txt`` in the folder v2 replaces by a file; the stamp edited to
    list it among v1's members (a hand edit, a script merging stamps). A record matches only
    the very file v1 wrote (kind, size, mtime, inode): the update is refused, the file kept."""
    from test_extract_kind_change import tree

    dest = tmp_path / "data"
    _kind_change_v1(emulator, dest, tmp_path)
    mine = dest / "ds" / "a" / "mine.txt"
    mine.write_bytes(b"the user's")
    st = os.lstat(mine)
    row = {"path only": ["ds/a/mine.txt", "file", 0, 0, 0, ""],
           "as a folder": ["ds/a/mine.txt", "dir", 0, 0, 0, ""],
           "every field but the inode": ["ds/a/mine.txt", "file", st.st_size, st.st_mtime_ns,
                                         st.st_ino + 1, ""]}[claim]
    path = _stamp(dest)
    stamp = json.loads(path.read_bytes())
    stamp["members"].append(row)
    path.write_text(json.dumps(stamp))
    before = tree(dest)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 1
    assert err.strip() == (f"Error: v.zip: member ds/a is a file, but {dest / 'ds/a'} is a "
                           "folder; move that folder away or extract elsewhere")
    after = tree(dest)
    assert after["ds/a/mine.txt"] == b"the user's"
    assert {k: v for k, v in after.items() if k != "v.zip"} == \
        {k: v for k, v in before.items() if k != "v.zip"}


def test_a_link_in_the_replaced_folder_leading_to_the_users_data_is_not_followed(
        emulator, drive_env, tmp_path):
    """v1's ``ds/a/lnk`` leads to ``../../mine`` (the user's folder in DEST). A link the user
    adds inside (to a folder outside DEST) stops the update; once it is gone, the folder v1
    made goes as a whole with its link, and what the links led to stays, every byte."""
    from test_extract_kind_change import FILE_V2, tree

    dest = tmp_path / "data"
    (dest / "mine").mkdir(parents=True)
    (dest / "mine" / "precious.txt").write_bytes(b"precious")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "far.txt").write_bytes(b"far")
    blob2 = _kind_change_v1(emulator, dest, tmp_path, {"ds/a/lnk": "../../mine"})
    assert os.readlink(dest / "ds/a/lnk") == "../../mine"
    os.symlink(str(outside), dest / "ds" / "a" / "out")  # the user's link: the update stops
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 1, err
    os.unlink(dest / "ds" / "a" / "out")
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert tree(dest) == {"v.zip": blob2, **FILE_V2, "mine/precious.txt": b"precious"}
    assert sorted(os.listdir(outside)) == ["far.txt"]


@pytest.mark.parametrize("v2", ["file", "folder"])
def test_the_users_edit_of_a_member_file_meets_a_new_version_alike_as_file_or_folder(
        emulator, drive_env, tmp_path, v2):
    """v1's file ``ds/a`` edited by the user; v2 has ``ds/a`` again as a file, or as a folder
    (the reverse kind change). An update replaces an edited member file as ``unzip`` does
    (docs: files replaced), and the folder of v2 does the same: no refusal in one case that
    the other lacks, no leftover."""
    from test_extract_kind_change import FILE_V1, FOLDER_V2, a_zip, replace_on_drive, tree

    dest = tmp_path / "data"
    emulator.add_file("d/v.zip", a_zip(FILE_V1))
    assert run("pull", "drive:d/v.zip", str(dest), "-x", "-q")[0] == 0
    (dest / "ds" / "a").write_bytes(b"the user's edit")
    members = FOLDER_V2 if v2 == "folder" else {**FILE_V1, "ds/a": b"ds/a of v2"}
    replace_on_drive("d/v.zip", a_zip(members), tmp_path)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert tree(dest) == {"v.zip": a_zip(members), **members}


def _vouched(emu) -> dict:
    """Sidecar name -> whether a file of the folder holds the md5 it names."""
    live = _live(emu)
    held = {m for ms in live.values() for m in ms}
    out = {}
    for name in live:
        if name.endswith(".json"):
            said = json.loads(emu.read_bytes(_id(emu, name)))
            out[name] = said.get("md5") in held
    return out


def test_sidecars_that_are_links_in_src_go_under_their_own_names(emulator, drive_env,
                                                                  local_state, tmp_path):
    """A loop keeping ``last.pt`` and ``last.json`` as links to its newest epoch's files, moved
    on between two pushes: Drive gets every sidecar under its own name (never the private
    copy's ``.drivestage-sidecar-…``), each vouching for bytes that are there."""
    src = tmp_path / "run"
    save(str(src), "epoch_001", 1, T0)
    for name in ("last.pt", "last.json"):
        os.symlink(name.replace("last", "epoch_001"), src / name)
    ok("push", str(src), f"drive:{FOLDER}")
    save(str(src), "epoch_002", 2, T0 + 60)
    for name in ("last.pt", "last.json"):
        os.unlink(src / name)
        os.symlink(name.replace("last", "epoch_002"), src / name)
    ok("push", str(src), f"drive:{FOLDER}")
    live = _live(emulator)
    assert sorted(live) == ["epoch_001.json", "epoch_001.pt", "epoch_002.json", "epoch_002.pt",
                            "last.json", "last.pt"]
    assert live["last.pt"] == live["epoch_002.pt"]
    assert live["last.json"] == live["epoch_002.json"]
    assert set(_vouched(emulator).values()) == {True}
    assert not [f for f in emulator.files() if f["title"].startswith(".drivestage")]


def test_a_sidecar_larger_than_max_bytes_of_a_checkpoint_saved_again(emulator, drive_env,
                                                                     local_state, tmp_path):
    """``last.json`` padded past sidecar.MAX_BYTES (huge metrics) is no sidecar to drivestage:
    sent as it is after its checkpoint, like any file; the old copy of last.pt goes once the
    new one is verified (it stayed for ever: the bounded read's md5 never equalled Drive's, so
    every push held it, and ``pull`` of last.pt failed on two items of that name)."""
    from drivestage import sidecar

    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    ok("push", str(src), f"drive:{FOLDER}")
    files = save(str(src), "last", 2, T0 + 60)
    side = json.loads((src / "last.json").read_bytes())
    side["metrics"] = {"pad": "x" * (sidecar.MAX_BYTES + 10)}
    big = json.dumps(side).encode()
    (src / "last.json").write_bytes(big)
    ok("push", str(src), f"drive:{FOLDER}")
    assert _live(emulator) == {"last.pt": files["last.pt"], "last.json": [md5(big)]}
    ok("pull", f"drive:{FOLDER}/last.pt", str(tmp_path / "got"))
    assert md5((tmp_path / "got" / "last.pt").read_bytes()) == files["last.pt"][0]


def test_a_private_copy_left_by_a_killed_push_is_removed_by_the_next(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    """A push killed while it uploaded a sidecar left its private copy in the temporary
    folder; the next push that makes one removes it (its process no longer runs), and leaves
    alone a copy whose process runs and a name it did not make."""
    import subprocess
    import sys

    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    ok("push", str(src), f"drive:{FOLDER}")
    second = save(str(src), "last", 2, T0 + 60)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    from drivestage.temps import namespace_tag   # (a copy is named with its pid namespace)

    stale = scratch / f".drivestage-sidecar-{namespace_tag()}.{gone}-ab12cd34.json"
    running = scratch / f".drivestage-sidecar-{namespace_tag()}.{os.getpid()}-ef56gh78.json"
    other = scratch / ".drivestage-sidecar-zz99yy88.json"  # no process id in its name
    for f in (stale, running, other):
        f.write_text("{}")
    ok("push", str(src), f"drive:{FOLDER}")
    assert sorted(os.listdir(scratch)) == sorted([running.name, other.name])
    assert _live(emulator) == second
