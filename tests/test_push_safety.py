"""push never reaches outside what it was given (issue 10): links that leave SRC, --delete
that would empty a drive, two pushes into one folder at once."""
from __future__ import annotations

import hashlib
import json
import os
import time

import pytest
from click.testing import CliRunner

from drivestage.cli import cli
from drivestage.upload_tree import push
from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def _tree_of(emu, top="Models/logs"):
    """{relative path: md5} of the live files under ``top``."""
    by_id = {f["id"]: f for f in emu.files()}
    top_id = emu.find(top)["id"]
    out = {}
    for f in emu.files():
        if f["labels"]["trashed"] or f["mimeType"].endswith(".folder"):
            continue
        parts, parent = [f["title"]], (f.get("parents") or [{}])[0].get("id")
        while parent and parent != top_id and parent in by_id:
            parts.append(by_id[parent]["title"])
            parent = (by_id[parent].get("parents") or [{}])[0].get("id")
        if parent == top_id:
            out["/".join(reversed(parts))] = f.get("md5Checksum")
    return out


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --------------------------------------------------------------------------- symlinks

@pytest.fixture
def linked_src(env):
    """SRC with a file, a link inside it, links leaving it (file, folder) and a dangling one."""
    src, outside = env / "logs", env / "outside"
    _write(str(src / "a.txt"), b"mine")
    _write(str(outside / "secret.txt"), b"not yours")
    _write(str(outside / "dir" / "b.txt"), b"not yours either")
    os.symlink("a.txt", src / "inner.txt")
    os.symlink(outside / "secret.txt", src / "secret.txt")
    os.symlink(outside / "dir", src / "outdir")
    os.symlink(src / "nowhere", src / "dangling")
    return str(src)


def test_links_leaving_src_are_skipped_and_reported(emulator, store, linked_src):
    result = push(linked_src, "Models/logs", store=store)
    assert _tree_of(emulator) == {"a.txt": _md5(b"mine"), "inner.txt": _md5(b"mine")}
    assert result.skipped_links == ["dangling", "outdir", "secret.txt"]


def test_follow_symlinks_follows_them(emulator, store, linked_src):
    result = push(linked_src, "Models/logs", store=store, follow_symlinks=True)
    assert _tree_of(emulator) == {"a.txt": _md5(b"mine"), "inner.txt": _md5(b"mine"),
                                  "secret.txt": _md5(b"not yours"),
                                  "outdir/b.txt": _md5(b"not yours either")}
    assert result.skipped_links == ["dangling"]


def test_a_link_loop_is_followed_once(emulator, store, env):
    src = env / "logs"
    _write(str(src / "d" / "x.txt"), b"x")
    os.symlink("..", src / "d" / "up")
    push(str(src), "Models/logs", store=store, follow_symlinks=True)
    assert _tree_of(emulator) == {"d/x.txt": _md5(b"x")}


def test_the_cli_says_what_was_skipped(emulator, drive_env, env, linked_src):
    result = CliRunner().invoke(cli, ["push", linked_src, "drive:Models/logs"])
    assert result.exit_code == 0, result.output
    assert ("skipped 3 links that lead outside SRC, to a folder or nowhere (dangling, outdir, "
            "secret.txt); --follow-symlinks follows them") in result.stderr


# --------------------------------------------------------------------------- --delete

def _trashed(emu):
    return sorted(f["title"] for f in emu.files() if f["labels"]["trashed"])


def _live_titles(emu):
    return sorted(f["title"] for f in emu.files() if not f["labels"]["trashed"])


@pytest.mark.parametrize("dest", ["drive:", "drive:shared/Team", "drive:shared/Team/"])
def test_delete_into_the_top_of_a_drive_is_refused(emulator, drive_env, env, dest):
    emulator.add_file("VOC_datasets/VOC.zip", b"precious")
    team = emulator.add_shared_drive("Team")
    emulator.add_file("data.zip", b"shared precious", drive_id=team)
    empty = env / "empty"
    empty.mkdir()
    before = _live_titles(emulator)
    result = CliRunner().invoke(cli, ["push", str(empty), dest, "--delete"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"Error: refusing --delete into {dest.rstrip('/')}")
    assert _live_titles(emulator) == before and _trashed(emulator) == []


def test_delete_into_a_drive_root_given_by_id_is_refused(emulator, store, env):
    from drivestage.errors import UsageError

    emulator.add_file("VOC_datasets/VOC.zip", b"precious")
    root_id = store.resolve("id:root").id
    empty = env / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="refusing --delete"):
        push(str(empty), f"id:{root_id}", store=store, delete=True)
    assert emulator.find("VOC_datasets/VOC.zip") is not None


def _remote_junk(emu, n, folder="Models/logs"):
    for i in range(n):
        emu.add_file(f"{folder}/junk_{i:02d}.txt", b"j")


def test_delete_far_beyond_src_is_refused_naming_the_count_and_the_flag(emulator, drive_env, env):
    _remote_junk(emulator, 12)
    empty = env / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["push", str(empty), "drive:Models/logs", "--delete"])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: push --delete would remove 12 items from drive:Models/logs, far more than the "
        "0 files in SRC (at most 10 without asking); nothing was sent or deleted. Check SRC "
        "and DEST, or allow it with --max-delete 12")
    assert len(_live_titles(emulator)) == 12 + 2 and _trashed(emulator) == []
    # allowed explicitly: moved to the trash, and said so first
    result = CliRunner().invoke(cli, ["push", str(empty), "drive:Models/logs", "--delete",
                                      "--max-delete", "12"])
    assert result.exit_code == 0, result.output
    assert ("--delete: removing 12 items from drive:Models/logs that are not in SRC "
            "(to the Drive trash)") in result.stderr
    assert _trashed(emulator) == [f"junk_{i:02d}.txt" for i in range(12)]


def test_max_delete_zero_refuses_one_stray_in_one_line(emulator, drive_env, env):
    """``--max-delete 0`` (nothing may go) with one stray: refused, said in the singular
    (it said "1 items"), the stray left on Drive."""
    _remote_junk(emulator, 1)
    src = env / "logs"
    _write(str(src / "a.txt"), b"a")
    result = CliRunner().invoke(cli, ["push", str(src), "drive:Models/logs", "--delete",
                                      "--max-delete", "0"])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: push --delete would remove 1 item from drive:Models/logs, more than "
        "--max-delete 0 allows; nothing was sent or deleted. Check SRC and DEST, or allow it "
        "with --max-delete 1")
    assert emulator.find("Models/logs/junk_00.txt") is not None


def test_the_delete_count_includes_what_remote_folders_hold(emulator, store, env):
    from drivestage.errors import DeletionRefusedError

    src = env / "logs"
    for i in range(3):
        _write(str(src / f"f{i}.txt"), b"f")
    for i in range(16):
        emulator.add_file(f"Models/logs/old/x{i:02d}.txt", b"o")
    with pytest.raises(DeletionRefusedError, match="would remove 17 items"):
        push(str(src), "Models/logs", store=store, delete=True)
    assert emulator.find("Models/logs/old/x00.txt") is not None
    assert [f for f in emulator.files() if f["title"].startswith("f")] == []  # nothing sent


def test_delete_permanently(emulator, drive_env, env):
    _remote_junk(emulator, 2)
    src = env / "logs"
    _write(str(src / "a.txt"), b"a")
    result = CliRunner().invoke(cli, ["push", str(src), "drive:Models/logs",
                                      "--delete-permanently"])
    assert result.exit_code == 0, result.output
    assert ("--delete: removing 2 items from drive:Models/logs that are not in SRC "
            "(permanently)") in result.stderr
    assert _live_titles(emulator) == ["Models", "a.txt", "logs"]
    assert _trashed(emulator) == []


# --------------------------------------------------------------------------- two pushes at once

def _run_tree(root):
    files = {"results.csv": b"epoch\n1\n", "epoch_001.pt": os.urandom(5000),
             "epoch_001.json": b'{"epoch": 1}', "tb/events.out": b"ev", "tb/deep/x.txt": b"x"}
    for rel, data in files.items():
        _write(str(root / rel), data)
    return files


def _no_duplicates(emu):
    seen = {}
    for f in emu.files():
        if f["labels"]["trashed"]:
            continue
        key = ((f.get("parents") or [{}])[0].get("id"), f["title"])
        seen.setdefault(key, []).append(f["id"])
    return {k: v for k, v in seen.items() if len(v) > 1}


def test_two_threads_pushing_into_one_folder_make_no_duplicates(emulator, env):
    """The second push comes while the first is between its look at DEST and its first
    create (held there by the emulator): it waits for the first (said), then finds what the
    first made. Without the lock it looked too, found nothing and made its own copies: that
    moment is forced, not left to the threads' timing (a latency on every GET let it pass
    without the two ever overlapping: it failed 1 run in 3 with the locks taken out)."""
    import logging
    import threading

    from drivestage.drive import connect

    src = env / "logs"
    files = _run_tree(src)
    # The first create of each push waits (until this test lets it go): the one that holds
    # the lock is held inside it, after it looked at DEST.
    emulator.faults.latency(60, method="POST", times=2)
    waited = threading.Event()

    class Waits(logging.Handler):
        def emit(self, record):
            if "another push into Models/logs is running in this process" in record.getMessage():
                waited.set()
    said = Waits()
    locks_log = logging.getLogger("drivestage.locks")
    locks_log.addHandler(said)
    barrier = threading.Barrier(2)
    errors, results = [], []

    def one_push():
        store = connect(api_root=emulator.url, token="test-token")
        barrier.wait()
        try:
            results.append(push(str(src), "Models/logs", store=store))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one_push) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        # One create held, then the other push either waits for the lock (said) or, with
        # no lock, has looked and sent its own create (held too).
        held, _ = emulator.faults.wait_latencies(lambda n: n >= 1, 30)
        deadline = time.monotonic() + 30
        both = False
        while not waited.is_set() and not both and time.monotonic() < deadline:
            both, _ = emulator.faults.wait_latencies(lambda n: n >= 2, 0.05)
        overlapped = waited.is_set() or both
    finally:
        locks_log.removeHandler(said)
        emulator.faults.clear()   # (the rule first: no later create waits)
        emulator.faults.hurry()
        for t in threads:
            t.join(60)
    assert held, "no push ever sent a create"
    assert overlapped, "the second push neither waited for the first nor sent a create"
    assert not any(t.is_alive() for t in threads)
    assert not errors
    # The second found everything the first made: nothing sent twice, nothing made twice
    # and removed again (without the lock: 10 uploads, a folder made twice, one deleted).
    assert sorted((sorted(r.uploaded), r.unchanged) for r in results) == [
        ([], len(files)), (sorted(files), 0)]
    assert [r.method for r in emulator.requests if r.method == "DELETE"] == []
    assert _trashed(emulator) == []
    assert _no_duplicates(emulator) == {}
    assert _tree_of(emulator) == {k: _md5(v) for k, v in files.items()}
    assert waited.is_set()   # (the lock it waited on, said: the interleaving happened)


def test_two_processes_pushing_into_one_folder_make_no_duplicates(emulator, drive_env, env):
    """As with two threads, across processes (the lock file): the second push comes while
    the first's first create is held, says it waits for the first, then finds what it made.
    (A latency on every GET let the two pass without ever overlapping.)"""
    import threading

    src = env / "logs"
    files = _run_tree(src)
    emulator.faults.latency(60, method="POST", times=2)
    environ = {**os.environ, **drive_env, "DRIVESTAGE_STATE_DIR": str(env / "state")}
    procs = [cli_server().popen(["push", str(src),
                                 "drive:Models/logs"], env=environ, stderr=PIPE,
                                text=True) for _ in range(2)]
    errs: list[list[str]] = [[], []]
    waited = threading.Event()

    def read(i: int) -> None:   # (each child's stderr, as it comes)
        for line in procs[i].stderr:
            errs[i].append(line)
            if "another push into Models/logs is running on this machine" in line:
                waited.set()
        procs[i].stderr.close()
    readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(2)]
    for t in readers:
        t.start()
    try:
        held, _ = emulator.faults.wait_latencies(lambda n: n >= 1, 60)
        deadline, both = time.monotonic() + 60, False
        while not waited.is_set() and not both and time.monotonic() < deadline:
            both, _ = emulator.faults.wait_latencies(lambda n: n >= 2, 0.05)
        overlapped = waited.is_set() or both
    finally:
        emulator.faults.clear()   # (the rule first: no later create waits)
        emulator.faults.hurry()
        codes = [p.wait(120) for p in procs]
        for t in readers:
            t.join(10)
    outs = ["".join(e) for e in errs]
    assert held, outs
    assert overlapped, ("the second push neither waited for the first nor sent a create", outs)
    assert codes == [0, 0], outs
    assert _no_duplicates(emulator) == {}
    assert _tree_of(emulator) == {k: _md5(v) for k, v in files.items()}
    uploads = [r for r in emulator.requests if r.method == "POST" and r.path.startswith("/upload/")]
    assert len(uploads) == len(files), outs   # (each file sent once, by one of them)
    assert [r.method for r in emulator.requests if r.method == "DELETE"] == [] and \
        _trashed(emulator) == []
    assert waited.is_set(), outs   # (the lock it waited on, said: the interleaving happened)


def test_duplicate_files_another_machine_made_are_repaired(emulator, store, env):
    src = env / "logs"
    _write(str(src / "best.pt"), b"new weights")
    _write(str(src / "results.csv"), b"same")
    emulator.add_file("Models/logs/best.pt", b"old weights 1")
    emulator.add_file("Models/logs/best.pt", b"old weights 2")
    older = emulator.add_file("Models/logs/results.csv", b"older")
    emulator.add_file("Models/logs/results.csv", b"same")        # the newest: equal to local
    # Two files made within one millisecond share a modifiedDate: make the order explicit.
    store.service.files().patch(fileId=older, body={"modifiedDate": "2020-01-01T00:00:00.000Z"},
                                setModifiedDate=True).execute()
    result = push(str(src), "Models/logs", store=store)
    assert result.uploaded == ["best.pt"] and result.unchanged == 1
    assert _no_duplicates(emulator) == {}
    assert _tree_of(emulator) == {"best.pt": _md5(b"new weights"), "results.csv": _md5(b"same")}


def test_duplicate_folders_are_explained_and_every_push_picks_the_same(emulator, store, env,
                                                                        caplog):
    from drivestage.drive.resources import FOLDER_MIME

    src = env / "logs"
    _write(str(src / "tb" / "a.txt"), b"a")
    logs = emulator.add_folder("Models/logs")
    ids = []
    for _ in range(2):   # what two machines pushing at once could leave
        f = store.drive.CreateFile({"title": "tb", "mimeType": FOLDER_MIME,
                                    "parents": [{"id": logs}]})
        f.Upload()
        ids.append(f["id"])
    with caplog.at_level("WARNING", logger="drivestage"):
        push(str(src), "Models/logs", store=store)
        _write(str(src / "tb" / "b.txt"), b"b")
        push(str(src), "Models/logs", store=store)
    made = {f["id"]: f["createdDate"] for f in emulator.files() if f["id"] in ids}
    chosen = min(ids, key=lambda i: (made[i], i))    # the oldest
    inside = sorted(f["title"] for f in emulator.files()
                    if (f.get("parents") or [{}])[0].get("id") == chosen)
    assert inside == ["a.txt", "b.txt"]
    warning = [r.getMessage() for r in caplog.records if "folders have this name" in r.getMessage()]
    assert warning and ", ".join(sorted(ids)) in warning[0] and "pull" in warning[0]


def test_delete_leaves_what_a_skipped_link_stands_for(emulator, store, linked_src):
    """What an earlier --follow-symlinks push sent is not 'missing from SRC' now."""
    push(linked_src, "Models/logs", store=store, follow_symlinks=True)
    push(linked_src, "Models/logs", store=store, delete=True)
    assert set(_tree_of(emulator)) == {"a.txt", "inner.txt", "secret.txt", "outdir/b.txt"}


def test_delete_into_a_folder_shared_with_you(emulator, drive_env, env):
    """Given by id, a folder someone shared with you shows no parent, like the top of a drive:
    --delete refuses it (naming the way that works). Under drive:shared-with-me/ its place is
    known, and --delete works there as in any folder."""
    folder = emulator.add_folder("Team", owner="teacher@school.edu", shared_with_me="writer")
    src = env / "src"
    _write(str(src / "old.txt"), b"old")        # ours: an editor may trash only their own files
    assert CliRunner().invoke(cli, ["push", str(src), "drive:shared-with-me/Team"]).exit_code == 0
    os.remove(src / "old.txt")
    _write(str(src / "new.txt"), b"new")
    refused = CliRunner().invoke(cli, ["push", str(src), f"drive:id:{folder}", "--delete"])
    assert refused.exit_code == 2, refused.output
    assert "drive:shared-with-me/" in refused.stderr
    assert _trashed(emulator) == []
    done = CliRunner().invoke(cli, ["push", str(src), "drive:shared-with-me/Team", "--delete"])
    assert done.exit_code == 0, done.output
    assert sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                  and not f["mimeType"].endswith(".folder")) == ["new.txt"]
    assert _trashed(emulator) == ["old.txt"]


def test_two_machines_pushing_into_a_new_folder_at_once_leave_one_folder(emulator, drive_env,
                                                                         env):
    """Two machines (their own state folders, so no lock between them) make DEST at once: both
    list, find nothing and create it. They must end with one folder holding both pushes, or
    every later push and resume fails on the duplicate name."""

    srcs = []
    for i in range(2):
        _write(str(env / f"src{i}" / f"machine{i}.txt"), b"m%d" % i)
        srcs.append(str(env / f"src{i}"))
    # Both look before either creates: each one's first create (DEST's folder) is held
    # until the other's has come too (a latency on every GET left that to the timing).
    emulator.faults.latency(60, method="POST", times=2)
    procs = [cli_server().popen(["push", src,
                                 "drive:Models/logs"],
                                env={**os.environ, **drive_env,
                                     "DRIVESTAGE_STATE_DIR": str(env / f"state{i}")},
                                stderr=PIPE, text=True) for i, src in enumerate(srcs)]
    try:
        both, _ = emulator.faults.wait_latencies(lambda n: n >= 2, 60)
    finally:
        emulator.faults.clear()   # (the rule first: no later create waits)
        emulator.faults.hurry()
        outs = [p.communicate(timeout=120)[1] for p in procs]
    assert both, ("the two pushes' creates never waited at once", outs)
    assert [p.returncode for p in procs] == [0, 0], outs
    assert _no_duplicates(emulator) == {}
    assert _tree_of(emulator) == {"machine0.txt": _md5(b"m0"), "machine1.txt": _md5(b"m1")}
    again = CliRunner().invoke(cli, ["push", srcs[0], "drive:Models/logs"])
    assert again.exit_code == 0, again.output


def test_a_duplicated_dest_is_pushed_into_its_oldest_folder_with_a_warning(emulator, store, env,
                                                                           caplog):
    from drivestage.drive.resources import FOLDER_MIME

    models = emulator.add_folder("Models")
    ids = []
    for _ in range(2):   # what an older drivestage on two machines could leave
        f = store.drive.CreateFile({"title": "logs", "mimeType": FOLDER_MIME,
                                    "parents": [{"id": models}]})
        f.Upload()
        ids.append(f["id"])
    made = {f["id"]: f["createdDate"] for f in emulator.files() if f["id"] in ids}
    chosen = min(ids, key=lambda i: (made[i], i))
    _write(str(env / "logs" / "a.txt"), b"a")
    with caplog.at_level("WARNING", logger="drivestage"):
        push(str(env / "logs"), "Models/logs", store=store)
    inside = [f["title"] for f in emulator.files()
              if (f.get("parents") or [{}])[0].get("id") == chosen]
    assert inside == ["a.txt"]
    assert any("folders have this name" in r.getMessage() and chosen in r.getMessage()
               for r in caplog.records)


def test_delete_never_removes_the_newest_verified_checkpoint_of_a_run(emulator, store, env):
    """A fresh machine's run folder holds only what it wrote since (no checkpoint yet): a
    --delete push must not take Drive's newest verified checkpoint, what a resume needs."""
    for epoch in (1, 2):
        data = os.urandom(1000 + epoch)
        emulator.add_file(f"Models/logs/epoch_00{epoch}.pt", data)
        emulator.add_file(f"Models/logs/epoch_00{epoch}.json", json.dumps(
            {"epoch": epoch, "run": "r1", "md5": _md5(data)}).encode())
    data = os.urandom(500)
    emulator.add_file("Models/logs/model.pt", data)   # a loop's own name, with its sidecar
    emulator.add_file("Models/logs/model.json", json.dumps(
        {"epoch": 1, "run": "r2", "md5": _md5(data)}).encode())
    _write(str(env / "logs" / "results.csv"), b"epoch\n")
    result = push(str(env / "logs"), "Models/logs", store=store, delete=True)
    assert sorted(result.deleted) == ["epoch_001.json", "epoch_001.pt"]
    assert set(_tree_of(emulator)) == {"epoch_002.pt", "epoch_002.json", "model.pt",
                                       "model.json", "results.csv"}


def test_a_dest_trashed_while_a_mirror_runs_is_made_again(emulator, store, env):
    """The user trashes the run's folder in the web UI while training mirrors into it: the
    next pushes of that long-lived store must not go on filling a folder in the trash (which
    no resume on another machine sees, and Drive empties after 30 days)."""
    src = env / "logs"
    _write(str(src / "a.txt"), b"a")
    push(str(src), "Models/logs", store=store)
    old = emulator.find("Models/logs")["id"]
    store.drive.CreateFile({"id": old}).Trash()
    _write(str(src / "b.txt"), b"b")
    push(str(src), "Models/logs", store=store)
    live = emulator.find("Models/logs")
    assert live is not None and live["id"] != old and not live["labels"]["trashed"]
    assert _tree_of(emulator) == {"a.txt": _md5(b"a"), "b.txt": _md5(b"b")}


def test_a_ctrl_c_during_a_push_with_several_jobs_stops_it_and_leaves_no_thread_uploading(
        emulator, drive_env, tmp_path, monkeypatch):
    """A Ctrl-C while ``push --jobs 2`` sends a folder: no other file starts, the uploads
    under way stop between chunks, and push raises only once its threads have ended (it
    went on with every queued file before; its place lock was then free while they ran)."""
    import signal
    import threading

    import drivestage
    from drivestage.upload_tree import push

    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    src = tmp_path / "run"
    src.mkdir()
    for i in range(8):
        (src / f"f{i}.bin").write_bytes(os.urandom(1 << 20))
    emulator.faults.throttle(per_connection=2_000_000)
    sent = []

    def progress(n: int) -> None:
        if not sent:
            sent.append(n)
            os.kill(os.getpid(), signal.SIGINT)

    store = drivestage.connect()
    before = set(threading.enumerate())  # a test that failed earlier may have left one
    with pytest.raises(KeyboardInterrupt):
        push(str(src), "runs/x", store=store, jobs=2, chunk_size=256 << 10,
             progress=progress)
    assert [t.name for t in threading.enumerate() if t.name.startswith("drivestage-up")
            and t.is_alive() and t not in before] == []
    names = {f["title"] for f in emulator.files()} - {"runs", "x"}
    assert len(names) <= 2, names  # at most the two under way
