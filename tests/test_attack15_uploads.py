"""Attacks on resumable uploads (session records, claims, resume) and what push builds on them.

Each test drives the real stack against the emulator; a child process is SIGKILLed at a real
moment of its upload (its own progress callback kills it: no sleeps to guess the moment)."""
from __future__ import annotations

import hashlib
import json
import os
import textwrap

import pytest

from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)

KiB = 1024
CHUNK = 256 * KiB


def _file(tmp_path, name: str, size: int, seed: int = 0) -> tuple[str, bytes]:
    data = (hashlib.sha256(f"{seed}".encode()).digest() * (size // 32 + 1))[:size]
    path = os.path.join(str(tmp_path), "src", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return path, data


def _named(emu, name: str, *, trashed: bool = False) -> list[dict]:
    return [f for f in emu.store.files.values()
            if f.get("title") == name and bool(f.get("trashed")) == trashed]


def _sessions(env) -> dict:
    path = env / "state" / "upload-sessions.json"
    return json.loads(path.read_text()) if path.exists() else {}


# A child that uploads argv[2] to Models/logs/<argv[3]> in chunks of argv[4] bytes and
# SIGKILLs itself once the server has answered for the byte count argv[5] (the file's size:
# the session completed, the record not yet dropped, the copy not yet verified).
_KILL_AT = textwrap.dedent("""
    import os, signal, sys
    from drivestage.drive import connect
    store = connect(api_root=sys.argv[1], token="test-token")
    folder = store.make_folders("Models/logs")
    sent = [0]
    def progress(n):
        sent[0] += n
        if sent[0] >= int(sys.argv[5]):
            os.kill(os.getpid(), signal.SIGKILL)
    store.upload(sys.argv[2], folder, sys.argv[3], chunk_size=int(sys.argv[4]),
                 progress=progress)
    print("finished")
""")


def _upload_killed_at(emulator, path: str, name: str, at: int) -> None:
    child = cli_server().run([emulator.url, path, name, str(CHUNK), str(at)],
                             script=_KILL_AT, env={**os.environ}, text=True, timeout=60)
    assert child.returncode == -9, child.stderr


# --------------------------------------- a completed session's file changed on Drive since

@pytest.mark.parametrize("then", ["trashed", "deleted", "moved", "renamed"])
def test_a_completed_session_resumed_after_its_file_left_the_folder(emulator, store, env,
                                                                     tmp_path, then):
    # A push was SIGKILLed after the last chunk's answer (the file complete on Drive, its
    # session record not yet dropped). The file was then trashed, deleted, moved or renamed
    # on Drive (by the user, or another machine's push). The next upload of the same,
    # unchanged local file must leave it in the folder under its name, md5 equal: not
    # "resume" the completed session and call that file, now elsewhere, the verified copy.
    path, data = _file(tmp_path, "big.pt", 3 * CHUNK + 11)
    _upload_killed_at(emulator, path, "big.pt", len(data))
    assert len(_sessions(env)) == 1
    (done,) = _named(emulator, "big.pt")
    folder = store.make_folders("Models/logs")
    files = store.service.files()
    if then == "trashed":
        files.trash(fileId=done["id"]).execute()
    elif then == "deleted":
        files.delete(fileId=done["id"]).execute()
    elif then == "moved":
        other = store.make_folders("Elsewhere")
        files.patch(fileId=done["id"], body={}, addParents=other.id,
                    removeParents=folder.id).execute()
    else:
        files.patch(fileId=done["id"], body={"title": "renamed.pt"}).execute()
    entry = store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    (live,) = [f for f in _named(emulator, "big.pt") if folder.id in f["parents"]]
    assert entry.id == live["id"]
    assert emulator.read_bytes(live["id"]) == data
    assert entry.md5 == live["md5"] == hashlib.md5(data).hexdigest()
    assert _sessions(env) == {}


# A child that pushes argv[2] into Models/logs (one upload at a time, 256 KiB chunks) and
# SIGKILLs itself once argv[3] bytes were answered for.
_PUSH_KILL_AT = textwrap.dedent("""
    import os, signal, sys
    from drivestage.upload_tree import push
    sent = [0]
    def progress(n):
        sent[0] += n
        if sent[0] >= int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
    push(sys.argv[2], "drive:Models/logs", jobs=1, chunk_size=int(sys.argv[4]),
         progress=progress)
    print("finished")
""")


def _push_killed_at(emulator, src: str, at: int) -> None:
    from _cli import child_env
    child = cli_server().run([emulator.url, src, str(at), str(CHUNK)], script=_PUSH_KILL_AT,
                             env=child_env(emulator), text=True, timeout=60)
    assert child.returncode == -9, child.stderr


def _side(epoch: int, data: bytes) -> bytes:
    return json.dumps({"epoch": epoch, "md5": hashlib.md5(data).hexdigest(),
                       "size": len(data)}).encode()


def test_a_push_resuming_a_session_whose_file_was_trashed_keeps_the_old_checkpoint(
        emulator, drive_env, env, tmp_path):
    # Drive holds last.pt (epoch 1, verified: its sidecar vouches for it). A push of epoch 2
    # is SIGKILLed once the new last.pt's last chunk is answered for: Drive then has two
    # last.pt. The user trashes the new, unvouched one, and pushes again. The push must end
    # with a live last.pt its sidecar vouches for: the old one deleted only once a new copy
    # is verified in the folder, never for a copy sitting in the trash.
    from _cli import run
    from _drive_state import live_md5s

    old = os.urandom(1000)
    emulator.add_file("Models/logs/last.pt", old)
    emulator.add_file("Models/logs/last.json", _side(1, old))
    src = str(tmp_path / "run")
    os.makedirs(src)
    new = os.urandom(3 * CHUNK + 5)
    with open(os.path.join(src, "last.pt"), "wb") as fh:
        fh.write(new)
    with open(os.path.join(src, "last.json"), "wb") as fh:
        fh.write(_side(2, new))
    _push_killed_at(emulator, src, len(new))
    (fresh,) = [f for f in _named(emulator, "last.pt") if f["size"] == len(new)]
    from drivestage.drive import connect  # the user trashes the copy no sidecar vouches for
    connect(api_root=emulator.url, token="test-token").service.files().trash(
        fileId=fresh["id"]).execute()

    code, out, err = run("push", src, "drive:Models/logs")
    assert code == 0, err
    live = live_md5s(emulator, "Models/logs")
    assert live == {"last.pt": [hashlib.md5(new).hexdigest()],
                    "last.json": [hashlib.md5(_side(2, new)).hexdigest()]}


# --------------------------------------------------------------- a malformed 308 Range

@pytest.mark.parametrize("rng", ["bytes=0-oops", "bytes=12", "bytes=0-", "garbage"])
@pytest.mark.parametrize("when", ["chunk", "resume"])
def test_a_malformed_range_is_one_error_line_and_leaves_no_file(emulator, store, env, tmp_path,
                                                               rng, when):
    # A broken proxy answers "308 resume incomplete" with a Range that is no byte range: the
    # upload must stop with drivestage's own error (one line, not a ValueError's traceback),
    # leave no file under the name, and the next try (the proxy fixed) must complete it.
    from drivestage.errors import DriveStageError

    path, data = _file(tmp_path, "big.pt", 3 * CHUNK + 1)
    folder = store.make_folders("Models/logs")
    if when == "resume":
        _upload_killed_at(emulator, path, "big.pt", CHUNK)
        assert len(_sessions(env)) == 1
    emulator.faults.inject("PUT", r"upload_id=", status=308, body="", headers={"Range": rng},
                           times=None)
    with pytest.raises(DriveStageError) as info:
        store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    assert "\n" not in str(info.value) and rng in str(info.value), str(info.value)
    assert _named(emulator, "big.pt") == []
    emulator.faults.clear()
    entry = store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    assert emulator.read_bytes(entry.id) == data and len(_named(emulator, "big.pt")) == 1
    assert _sessions(env) == {}


# --------------------------------- two pushes of one folder at once, one SIGKILLed mid-way

def _run_folder(tmp_path) -> tuple[str, dict]:
    src = str(tmp_path / "run")
    os.makedirs(src)
    new = os.urandom(3 * CHUNK + 5)
    files = {"last.pt": new, "last.json": _side(2, new), "results.csv": os.urandom(2 * CHUNK + 3)}
    for name, data in files.items():
        with open(os.path.join(src, name), "wb") as fh:
            fh.write(data)
    return src, files


def _uploads_of(emulator, method: str) -> list:
    return [r for r in emulator.requests if r.method == method and r.path.startswith("/upload/")]


@pytest.mark.parametrize("moment", ["before-session", "recorded", "mid-chunk", "last-chunk"]
                         if os.environ.get("DRIVESTAGE_TEST_SWEEP") == "all"
                         else ["recorded", "last-chunk"])  # (CI's time: the two that matter most)
def test_two_pushes_of_one_folder_one_sigkilled_leave_each_file_once(emulator, env, tmp_path,
                                                                     moment):
    # Push A and push B (real processes, one state folder: one machine) of the same folder
    # into the same Drive folder at once; A is SIGKILLed at `moment` of its first upload.
    # B (waiting on the place lock meanwhile) then does the push, and a third push finds
    # nothing to do. Drive must hold each file once, md5 equal, the old checkpoint gone.
    from _cli import child_env
    from _drive_state import live_md5s
    from _kill import sigkill_when

    cli = cli_server()
    old = os.urandom(1000)
    emulator.add_file("Models/logs/last.pt", old)
    emulator.add_file("Models/logs/last.json", _side(1, old))
    src, files = _run_folder(tmp_path)
    cenv = child_env(emulator)
    push_cmd = ["push", src, "drive:Models/logs", "--chunk-size", "256KiB", "--jobs", "1"]
    emulator.clear_requests()
    if moment == "last-chunk":
        _push_killed_at(emulator, src, len(files["last.pt"]))
        b = cli.popen(push_cmd, env=cenv, stdout=PIPE, stderr=PIPE)
    else:
        if moment == "before-session":
            emulator.faults.latency(3.0, "POST", r"^/upload/", times=1)
            ready = lambda: len(_uploads_of(emulator, "POST")) >= 1
        elif moment == "recorded":
            emulator.faults.latency(3.0, "PUT", r"upload_id=", times=1)
            ready = lambda: len(_uploads_of(emulator, "PUT")) >= 1 and _sessions(env)
        else:
            emulator.faults.throttle(2 * CHUNK)
            ready = lambda: len(_uploads_of(emulator, "PUT")) >= 2
        a = cli.popen(push_cmd, env=cenv, stdout=PIPE, stderr=PIPE)
        b = cli.popen(push_cmd, env=cenv, stdout=PIPE, stderr=PIPE)
        sigkill_when(a, ready, f"push A never got to {moment}")
        emulator.faults.clear()
    out, err = b.communicate(timeout=120)
    assert b.returncode == 0, err
    again = cli.run(push_cmd, env=cenv, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "0 uploaded" in again.stderr, again.stderr
    want = {name: [hashlib.md5(data).hexdigest()] for name, data in files.items()}
    assert live_md5s(emulator, "Models/logs") == want


# ------------------------------------------- a state folder that is full, or read-only

from _tmpfs import small_disk  # noqa: E402,F401 (a fixture)


def _fill(folder) -> None:
    try:
        with open(os.path.join(folder, "filler"), "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError:
        pass


def _remount_read_only(point) -> None:
    import ctypes
    import ctypes.util
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    ms_rdonly, ms_remount = 1, 32
    if libc.mount(b"tmpfs", os.fsencode(str(point)), b"tmpfs", ms_remount | ms_rdonly, None):
        pytest.skip(f"cannot remount a tmpfs read-only: {os.strerror(ctypes.get_errno())}")


@pytest.mark.parametrize("full", ["before", "during"])
def test_a_full_state_disk_costs_only_the_resume(emulator, store, env, tmp_path, small_disk,
                                                 monkeypatch, full):
    # The state folder shares a disk that fills up (a training run's checkpoints on Colab):
    # before the upload (its session cannot be saved), or while it runs (its record cannot
    # be dropped at the end). The upload must still complete and be verified: the state is
    # there to resume, never a reason to fail a transfer that worked.
    state = small_disk(64 * KiB)
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state))
    path, data = _file(tmp_path, "big.pt", 3 * CHUNK + 1)
    folder = store.make_folders("Models/logs")
    if full == "before":
        _fill(state)
    filled = []

    def progress(n):
        if full == "during" and not filled:
            filled.append(n)
            _fill(state)
    entry = store.upload(path, folder, "big.pt", chunk_size=CHUNK, progress=progress)
    assert emulator.read_bytes(entry.id) == data
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert len(_named(emulator, "big.pt")) == 1


def test_a_push_with_a_read_only_state_folder_is_one_error_line(emulator, drive_env, env,
                                                                tmp_path, small_disk,
                                                                monkeypatch):
    # Without its state folder a push cannot hold the place lock that keeps two pushes of
    # this machine apart: it stops before a byte is sent, saying so in one line.
    from _cli import run

    state = small_disk(64 * KiB)
    _remount_read_only(state)
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state))
    src, _ = _run_folder(tmp_path)
    code, out, err = run("push", src, "drive:Models/logs")
    assert code == 1
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert str(state) in err and "DRIVESTAGE_STATE_DIR" in err, err
    assert _uploads_of(emulator, "POST") == []


# ---------------------------------- five uploads of one file at once in one process, killed

_FIVE = textwrap.dedent("""
    import os, signal, sys, threading
    from drivestage.drive import connect
    store = connect(api_root=sys.argv[1], token="test-token")
    folder = store.make_folders("Models/logs")
    started, lock = set(), threading.Lock()
    def one(i):
        def progress(n):  # each waits here after its first chunk, until all five have one
            with lock:
                started.add(i)
                if len(started) == 5:
                    os.kill(os.getpid(), signal.SIGKILL)
            threading.Event().wait(30)
        store.upload(sys.argv[2], folder, "big.pt", chunk_size=int(sys.argv[3]),
                     progress=progress)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("finished")
""")


def test_five_uploads_of_one_file_killed_at_once_resume_one_and_leave_one_file(
        emulator, store, env, tmp_path):
    # SESSION_SLOTS (4) uploads get a record each; the fifth saves none. All five are
    # SIGKILLed once each has a chunk in. The rerun resumes one saved session (no new one),
    # sends only what it lacks, and leaves one big.pt, md5 equal; no session it resumed
    # belongs to another file.
    from drivestage.state import SESSION_SLOTS

    path, data = _file(tmp_path, "big.pt", 4 * CHUNK + 9)
    child = cli_server().run([emulator.url, path, str(CHUNK)], script=_FIVE,
                             env={**os.environ}, text=True, timeout=60)
    assert child.returncode == -9, child.stderr
    saved = _sessions(env)
    assert len(saved) == SESSION_SLOTS
    assert len({r["uri"] for r in saved.values()}) == SESSION_SLOTS
    assert _named(emulator, "big.pt") == []
    emulator.clear_requests()
    folder = store.make_folders("Models/logs")
    entry = store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    assert _uploads_of(emulator, "POST") == []
    sent = sum(r.bytes_in for r in _uploads_of(emulator, "PUT"))
    assert sent <= len(data) - CHUNK
    assert [f["id"] for f in _named(emulator, "big.pt")] == [entry.id]
    assert emulator.read_bytes(entry.id) == data and entry.md5 == hashlib.md5(data).hexdigest()
    assert len(_sessions(env)) == SESSION_SLOTS - 1


# ------------------------------------------------ a claims file that is not a plain file

@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_an_odd_claims_file_still_lets_an_upload_be_cut_and_resumed(emulator, store, env,
                                                                    tmp_path, kind):
    # upload-sessions.json.claims is a FIFO or a folder: the claims then hold in this process
    # only, and an upload cut after a chunk still resumes its own session and leaves one
    # verified file. (A link there is refused: test_attack16_small.)
    state = env / "state"
    state.mkdir(exist_ok=True)
    claims = state / "upload-sessions.json.claims"
    if kind == "fifo":
        os.mkfifo(claims)
    else:
        claims.mkdir()
    path, data = _file(tmp_path, "big.pt", 3 * CHUNK + 2)
    folder = store.make_folders("Models/logs")

    def cut(n):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        store.upload(path, folder, "big.pt", chunk_size=CHUNK, progress=cut)
    assert len(_sessions(env)) == 1
    emulator.clear_requests()
    entry = store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    assert _uploads_of(emulator, "POST") == []
    assert emulator.read_bytes(entry.id) == data and len(_named(emulator, "big.pt")) == 1
    assert _sessions(env) == {}


def test_a_link_to_a_file_at_the_claims_file_is_refused_and_the_file_untouched(
        emulator, store, env, tmp_path):
    # A link to an existing file (not only a dangling one, test_attack16_small): drivestage
    # never opens, creates nor locks what a link in its state folder leads to.
    from drivestage.errors import LocalFileError

    state = env / "state"
    state.mkdir(exist_ok=True)
    claims = state / "upload-sessions.json.claims"
    (tmp_path / "elsewhere").write_bytes(b"theirs")
    claims.symlink_to(tmp_path / "elsewhere")
    path, _ = _file(tmp_path, "big.pt", 3 * CHUNK + 2)
    folder = store.make_folders("Models/logs")
    with pytest.raises(LocalFileError, match="is a symbolic link; drivestage never follows"):
        store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    assert (tmp_path / "elsewhere").read_bytes() == b"theirs"
    assert _named(emulator, "big.pt") == []


# ---------------------------------------- the local file changed between start and resume

@pytest.mark.parametrize("change", ["grown", "truncated", "renamed-over", "same-size-and-mtime"])
@pytest.mark.parametrize("replace", [False, True])
def test_a_file_changed_between_the_cut_and_the_resume_sends_its_new_bytes(
        emulator, store, env, tmp_path, change, replace):
    # Cut after a chunk, then the local file changes: grown, truncated, replaced by a rename,
    # or rewritten with other bytes of the same size and its mtime put back (rsync -t, cp -p).
    # The rerun must leave the new bytes on Drive, md5 verified, one file: never the old
    # session's bytes with the new file's tail.
    path, old = _file(tmp_path, "big.bin", 3 * CHUNK + 2)
    folder = store.make_folders("Models/logs")
    target = None
    if replace:
        target = store.upload(path, folder, "big.bin", chunk_size=CHUNK)
        with open(path, "ab") as fh:
            fh.write(b"v2")
        old = old + b"v2"

    def cut(n):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        store.upload(path, folder, "big.bin", chunk_size=CHUNK, progress=cut, replace=target)
    st = os.stat(path)
    if change == "grown":
        new = old + os.urandom(CHUNK)
    elif change == "truncated":
        new = old[:CHUNK + 5]
    else:
        new = os.urandom(len(old))
    if change == "renamed-over":
        with open(path + ".tmp", "wb") as fh:
            fh.write(new)
        os.replace(path + ".tmp", path)
    else:
        with open(path, "r+b") as fh:
            fh.truncate(0)
            fh.write(new)
    if change == "same-size-and-mtime":
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    entry = store.upload(path, folder, "big.bin", chunk_size=CHUNK, replace=target)
    (live,) = _named(emulator, "big.bin")
    assert entry.id == live["id"] and (not replace or entry.id == target.id)
    assert emulator.read_bytes(entry.id) == new
    assert entry.md5 == hashlib.md5(new).hexdigest()
    assert _sessions(env) == {}


# ------------------------------------------------- a session that expires mid-way

@pytest.mark.parametrize("status", [404, 410])
@pytest.mark.parametrize("replace", [False, True])
def test_a_session_that_expires_mid_way_restarts_once_and_leaves_one_verified_file(
        emulator, store, env, tmp_path, status, replace):
    path, data = _file(tmp_path, "big.bin", 3 * CHUNK + 3)
    folder = store.make_folders("Models/logs")
    target = store.upload(path, folder, "big.bin", chunk_size=CHUNK) if replace else None
    data = os.urandom(len(data) + CHUNK)
    with open(path, "wb") as fh:
        fh.write(data)
    emulator.clear_requests()
    sent = []

    def expire(n):  # the session is forgotten once its first chunk is in
        if not sent:
            sent.append(n)
            emulator.faults.inject("PUT", r"upload_id=", status=status, times=1)
    entry = store.upload(path, folder, "big.bin", chunk_size=CHUNK, replace=target,
                         progress=expire)
    starts = [r for r in emulator.requests
              if r.path.startswith("/upload/") and "upload_id" not in r.query]
    assert len(starts) == 2
    (live,) = _named(emulator, "big.bin")
    assert entry.id == live["id"] and (not replace or entry.id == target.id)
    assert emulator.read_bytes(entry.id) == data
    assert entry.md5 == hashlib.md5(data).hexdigest() and _sessions(env) == {}
