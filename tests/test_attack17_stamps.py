"""Attacks on how a folder pull (and a single-file pull) finds a file's stamps and a killed
run's leftovers: the one listing per folder a folder pull takes at its start
(:func:`drivestage.partials.listed_once`), each file's own stamp read by name
(:func:`drivestage.stamps.own`), concurrent pulls into one DEST, and remote names that look
like drivestage's own files. Against the emulator, through the real stack."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import threading
import time

import pytest

import drivestage
from drivestage import localfs, temps

from _archives import a_tar
from _cli import child_env, run
from _forkcli import cli_server
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

#: Every case with DRIVESTAGE_TEST_SWEEP=all (about 25 s more); by default one of each kind.
_ALL = os.environ.get("DRIVESTAGE_TEST_SWEEP") == "all"


def media(emulator) -> list:
    return [r for r in emulator.requests if r.query.get("alt") == "media"]


def a_new_process(monkeypatch) -> None:
    """What a rerun in a new process starts with: no folder swept yet (the sweep of a
    folder's dead temporary files runs at most once a minute per process)."""
    monkeypatch.setattr(localfs, "_swept", {})


def leftovers(root) -> list[str]:
    """drivestage's own files left in the folders below ``root`` (partials, records, their
    temporary files, extraction folders), outside the state folders."""
    out = []
    for where, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        out += [os.path.join(where, n) for n in files + dirs
                if n.endswith((".partial", ".ranges", ".tmp")) or n.startswith(".drivestage-")]
    return out


# --- names that look like drivestage's own ------------------------------------------------

def _foreign_tmp_name(stem: str) -> str:
    """A name of the form of an atomic write's temporary file, of another pid namespace."""
    other = "0badcafe" if temps.namespace_tag() != "0badcafe" else "0badcaff"
    return f".{stem}.{other}-12345.a1b2c3.tmp"


def test_an_archive_member_named_like_a_temporary_file_is_left_out_and_stays_so(
        emulator, drive_env, tmp_path, monkeypatch):
    """An archive member named as an atomic write's temporary file of another machine
    (``.x.<8 hex>-<pid>.<6 hex>.tmp``) keeps its mtime from the archive (here 1970). The
    next download into that folder writes its range record atomically, which swept the
    folder for dead processes' temporary files: the member was removed right after a pull
    that reported success, and every rerun extracted it again. Since attackpull32 such a
    member is left out of the extraction (said once): the next download and rerun find
    every member in place."""
    member = _foreign_tmp_name("notes")
    emulator.add_file("ds/a.tar", a_tar({member: b"mine", "keep.txt": b"keep"}))
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:ds", str(dest), "--extract")
    assert code == 0, err
    assert f"left out member {member!r} of " in err, err
    assert not (dest / "ds" / member).exists()
    assert (dest / "ds" / "keep.txt").read_bytes() == b"keep"
    emulator.add_file("ds/b.bin", b"b" * 1000)
    a_new_process(monkeypatch)
    code, out, err = run("pull", "drive:ds", str(dest), "--extract", "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"cached": 1, "download": 1}
    assert not (dest / "ds" / member).exists()
    assert (dest / "ds" / "b.bin").read_bytes() == b"b" * 1000


def test_a_drive_file_named_like_a_temporary_file_is_skipped_a_day_later_too(
        emulator, drive_env, tmp_path, monkeypatch):
    """The same for a Drive file of such a name: once its copy was a day old, the next
    download into its folder removed it, after a pull that said every file is staged. A
    folder pull now skips it (attackpull32), and the folder's reruns stay cached."""
    name = _foreign_tmp_name("weights")
    emulator.add_file(f"ds/{name}", b"w" * 100)
    emulator.add_file("ds/a.bin", b"a" * 10)
    dest = tmp_path / "data"
    code, _, err = run("pull", "drive:ds", str(dest))
    assert code == 0, err
    assert f"skipping drive:ds/{name}: the temporary file of a write that was interrupted " \
        "where it was made, not data" in err, err
    assert not (dest / "ds" / name).exists()
    emulator.add_file("ds/c.bin", b"c" * 1000)
    a_new_process(monkeypatch)
    code, out, err = run("pull", "drive:ds", str(dest), "-j", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"cached": 1, "download": 1}
    emulator.clear_requests()
    code, out, err = run("pull", "drive:ds", str(dest), "--json")
    assert code == 0, err
    assert set(json.loads(out)["actions"]) == {"cached"}
    assert media(emulator) == []


# --- concurrent pulls into one DEST -----------------------------------------------------------

@contextlib.contextmanager
def _pull_held_at_a_new(emulator, dest, *options: str):
    """``pull drive:ds DEST -j 1`` in a child process, held at its first file, ``ds/a.new``
    (added here): what the ``with`` block does lands after the pull's listings and before
    any other file's turn. Yields the process; the hold ends with the block."""
    emulator.add_file("ds/a.new", b"new")
    first = emulator.faults.hold(emulator.find("ds/a.new")["id"], 1)
    emulator.clear_requests()
    proc = cli_server().popen(["pull", "drive:ds", str(dest),
                               "-j", "1", *options], env=child_env(emulator),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not media(emulator):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        yield proc
    finally:
        first.release()


def _files() -> dict[str, bytes]:
    out = {f"ds/s{i}.bin": bytes([65 + i]) * (300 + i) for i in range(6)}
    out["ds/sub/big.bin"] = os.urandom(3 * 1024 * 1024)
    out["ds/sub/t.txt"] = b"t" * 77
    return out


def _check_staged(emulator, dest, files: dict[str, bytes], *options: str,
                  members: dict[str, bytes] = {}) -> None:
    """Every file's bytes under its name (and every member's), nothing of drivestage's left
    beside them, and a rerun that fetches nothing."""
    for rel, data in {**files, **members}.items():
        assert (dest / rel).read_bytes() == data, rel
    assert leftovers(dest / "ds") == []
    emulator.clear_requests()
    code, out, err = run("pull", "drive:ds", str(dest), "--json", *options)
    assert code == 0, err
    assert json.loads(out)["actions"] == {"cached": len(files)}
    assert media(emulator) == []
    # Drive asked for a listing of each of its folders, the top one found with its own (the
    # pull's record of it: rerun37; it was one request more), nothing per file.
    folders = {rel.rsplit("/", 1)[0] for rel in files}
    assert len(emulator.requests) == len(folders), [r.query for r in emulator.requests]


def _pulls(emulator, *argvs: list[str]) -> list[tuple[int, str]]:
    env = child_env(emulator)
    procs = [cli_server().popen(["pull", *argv, "-q"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for argv in argvs]
    out = []
    for p in procs:
        _, err = p.communicate(timeout=120)
        out.append((p.returncode, err.decode()))
    return out


@pytest.mark.parametrize("extract", [False, True] if _ALL else [True])
def test_two_folder_pulls_and_a_file_pull_of_one_dest_at_once(emulator, drive_env, tmp_path,
                                                               extract):
    """Two folder pulls of one Drive folder into one DEST (one in another process, one in
    this one), and a single-file pull of one of its files into the folder they fill (in a
    thread of this process: it sees the folder pull's listing), all at once. Each file's
    lock makes one of them fetch it, the others wait and find its stamp: the right bytes
    under each name (each archive's members, with --extract), no partial or temporary file
    left, and a rerun fetches nothing."""
    files = _files()
    members = {"m/1.txt": b"one", "m/2.txt": b"two" * 1000}
    files["ds/sub/a.tar"] = a_tar(members)
    ids = {rel: emulator.add_file(rel, data) for rel, data in files.items()}
    emulator.faults.latency(0.02, method="GET", path=r"alt=media")
    # big.bin held half way until every pull is under way: they meet on its lock.
    held = emulator.faults.hold(ids["ds/sub/big.bin"], 1024 * 1024)
    dest = tmp_path / "data"
    options = ["--extract"] if extract else []
    proc = cli_server().popen(["pull", "drive:ds", str(dest),
                               "-q", *options], env=child_env(emulator),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    errors: list[BaseException] = []

    def pull(src: str, where: str) -> None:
        try:
            drivestage.pull(src, where, extract=extract, quiet=True)
        except BaseException as exc:  # noqa: B902 - reported by the test below
            errors.append(exc)

    one = "drive:ds/sub/a.tar" if extract else "drive:ds/sub/big.bin"
    threads = [threading.Thread(target=pull, args=("drive:ds", str(dest))),
               threading.Thread(target=pull, args=(one, str(dest / "ds" / "sub")))]
    try:
        deadline = time.monotonic() + 30
        while not media(emulator):  # the other process has listed its folders
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        listings = len([r for r in emulator.requests if r.query.get("q")])
        for t in threads:
            t.start()
        # This process's pulls under way too: each has looked its SRC up on Drive.
        while len([r for r in emulator.requests if r.query.get("q")]) < listings + 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        held.release()
    for t in threads:
        t.join(timeout=120)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert errors == []
    emulator.faults.clear()
    _check_staged(emulator, dest, files, *options, members={
        f"ds/sub/{m}": data for m, data in members.items()} if extract else {})


# --- names that collide, or nearly ------------------------------------------------------------

def test_names_that_nearly_collide_each_keep_their_own_bytes_and_stamp(
        emulator, drive_env, tmp_path):
    """Names of one folder that differ only by case, by unicode normalisation, that are as
    long as a local name may be (255 bytes, their stamps', partials' and locks' names
    hashed), that start as another's does, or that look like a stamp's file name: each its
    own bytes, a rerun fetches nothing, --force fetches each once more and leaves them so."""
    long_a = "a" * 251 + ".bin"
    long_b = "a" * 250 + "b.bin"
    names = ["a.txt", "A.txt", "caf\u00e9.txt", "cafe\u0301.txt", long_a, long_b,
             "long-" + hashlib.sha1(long_a.encode()).hexdigest(), "a.txt.json",
             "a.txt@0123456789abcdef.json", "a.txt.lock", "x" * 150 + "@1.json", "x" * 150]
    files = {f"ds/{n}": f"{i}:{n}".encode() for i, n in enumerate(names)}
    for rel, data in files.items():
        emulator.add_file(rel, data)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:ds", str(dest), "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"download": len(names)}
    for rel, data in files.items():
        assert (dest / rel).read_bytes() == data, rel
    _check_staged(emulator, dest, files)
    code, out, err = run("pull", "drive:ds", str(dest), "--force", "--json")
    assert code == 0, err
    assert len(media(emulator)) == len(names)
    _check_staged(emulator, dest, files)


# --- a folder pull killed, then run again -----------------------------------------------------

@pytest.mark.parametrize("then", ["same", "replaced on Drive"] if _ALL else
                         ["replaced on Drive"])
def test_a_folder_pull_killed_mid_file_then_rerun_leaves_the_right_bytes_and_nothing_else(
        emulator, drive_env, tmp_path, then):
    """SIGKILL while a folder pull holds part of its big file; the rerun's one listing of
    the folder finds the partial: resumed when Drive still has that version, removed when
    the file was replaced there. Either way the right bytes, no leftovers, and the next
    rerun fetches nothing."""
    from _kill import sigkill_when
    from drivestage import download as dl

    files = _files()
    ids = {rel: emulator.add_file(rel, data) for rel, data in files.items()}
    dest = tmp_path / "data"
    big = dest / "ds" / "sub" / "big.bin"
    entry = drivestage.connect().resolve("ds/sub/big.bin")
    hold = emulator.faults.hold(ids["ds/sub/big.bin"], 1024 * 1024)
    proc = cli_server().popen(["pull", "drive:ds", str(dest),
                               "-q", "-j", "1"], env=child_env(emulator),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        sigkill_when(proc, lambda: dl.partial_size(str(big), entry) >= 512 * 1024)
    finally:
        hold.release()
    assert not big.exists()
    if then != "same":
        drivestage.connect().delete(entry)
        files["ds/sub/big.bin"] = os.urandom(len(files["ds/sub/big.bin"]))
        emulator.add_file("ds/sub/big.bin", files["ds/sub/big.bin"])
    code, out, err = run("pull", "drive:ds", str(dest), "--json")
    assert code == 0, err
    summary = {os.path.basename(f["path"]): f for f in json.loads(out)["files"]}
    if then == "same":
        assert summary["big.bin"]["action"] == "resume"
        assert summary["big.bin"]["resumed_from"] >= 512 * 1024
    else:
        assert summary["big.bin"]["action"] == "download"
    _check_staged(emulator, dest, files)


def test_a_pull_killed_after_a_folder_pull_listed_its_folder_is_resumed_by_that_pull(
        emulator, drive_env, tmp_path):
    """The folder pull's one listing is older than a single-file pull's partial of its big
    file: that pull, live, keeps it (the folder pull waits on the file's lock); killed, its
    partial is this folder pull's to resume. Right bytes, nothing left, a rerun fetches
    nothing."""
    from _kill import sigkill_when
    from drivestage import download as dl

    files = _files()
    ids = {rel: emulator.add_file(rel, data) for rel, data in files.items()}
    dest = tmp_path / "data"
    big = dest / "ds" / "sub" / "big.bin"
    entry = drivestage.connect().resolve("ds/sub/big.bin")
    first = emulator.faults.hold(ids["ds/s0.bin"], 100)
    held = emulator.faults.hold(ids["ds/sub/big.bin"], 1024 * 1024)
    env = child_env(emulator)
    got: list = []

    def pull() -> None:  # in a thread: the folder pull, here in this process
        try:
            got.append(drivestage.pull("drive:ds", str(dest), jobs=1, quiet=True))
        except BaseException as exc:  # noqa: B902 - reported by the test below
            got.append(exc)

    folder = threading.Thread(target=pull)
    folder.start()
    one = None
    try:
        # The folder pull has listed its folders once it asks for its first file's bytes.
        deadline = time.monotonic() + 30
        while not any(r.path.endswith(ids["ds/s0.bin"]) for r in media(emulator)):
            assert folder.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)
        (dest / "ds" / "sub").mkdir(parents=True, exist_ok=True)
        one = cli_server().popen(["pull",
                                  "drive:ds/sub/big.bin", str(dest / "ds" / "sub"), "-q"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while not any(r.path.endswith(ids["ds/sub/big.bin"]) for r in media(emulator)):
            assert one.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        first.release()  # the single-file pull has big.bin's lock: the folder pull waits
        # Files in tree order, big.bin before t.txt: the folder pull waits for its lock.
        small = [ids[r] for r in files if "/sub/" not in r]

        def ready() -> bool:
            done = {i for i in small if any(r.path.endswith(i) for r in media(emulator))}
            return dl.partial_size(str(big), entry) >= 512 * 1024 and len(done) == len(small)

        sigkill_when(one, ready, "the single-file pull never got its partial")
    finally:
        first.release()
        held.release()
        if one is not None and one.poll() is None:
            one.kill()
        folder.join(timeout=60)
    [result] = got
    assert not isinstance(result, BaseException), result
    summary = {os.path.basename(f.path): f for f in result.files}
    assert summary["big.bin"].action == "resume", summary["big.bin"]
    assert summary["big.bin"].resumed_from >= 512 * 1024
    _check_staged(emulator, dest, files)


@pytest.mark.parametrize("what", ["link", "folder"] if _ALL else ["link"])
def test_a_target_replaced_after_the_listing_is_never_written_through(emulator, drive_env,
                                                                       tmp_path, what):
    """A rerun's one listing is taken; then, before their turn, a staged file is replaced by
    a link to a file outside DEST (of the same size) and another one by a folder. The link
    is replaced by the right bytes, the file it led to is untouched; the folder stops the
    pull with one line naming it, and its contents stay."""
    files = _files()
    ids = {rel: emulator.add_file(rel, data) for rel, data in files.items()}
    dest = tmp_path / "data"
    assert run("pull", "drive:ds", str(dest), "-q")[0] == 0
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"o" * len(files["ds/sub/t.txt"]))
    target = dest / "ds" / "sub" / "t.txt"
    with _pull_held_at_a_new(emulator, dest, "-q") as proc:
        target.unlink()
        if what == "link":
            target.symlink_to(outside)
        else:
            target.mkdir()
            (target / "mine").write_bytes(b"mine")
    out, err = proc.communicate(timeout=60)
    assert outside.read_bytes() == b"o" * len(files["ds/sub/t.txt"])
    if what == "link":
        assert proc.returncode == 0, err.decode()
        assert not target.is_symlink()
        files["ds/a.new"] = b"new"
        _check_staged(emulator, dest, files)
    else:
        assert proc.returncode == 1
        assert err.decode().strip().splitlines()[-1] == (
            f"Error: {target} is a folder; drive:ds/sub/t.txt would be saved there as a "
            "file. Move the folder away or pull into another DEST")
        assert (target / "mine").read_bytes() == b"mine"


@pytest.mark.parametrize("how", ["same id", "new id"] + (["same id, no other pull"] if _ALL
                                                          else []))
def test_a_file_changed_on_drive_and_staged_by_another_pull_after_the_walk(
        emulator, drive_env, tmp_path, how):
    """A folder pull walked Drive (t.txt at v1), then t.txt got a new version on Drive (under
    the same id, or a new file at its path) and another pull staged that one before the
    folder pull's turn. The stamp found then is newer than what the walk saw: never counted
    as v1, never "updated" back to v1 nor fetched for nothing (it failed: checksum mismatch,
    or not found on Drive); the bytes staged stay what their stamp says. Without another
    pull, the old stamp is the walk's version: cached, and the next rerun updates it."""
    files = _files()
    for rel, data in files.items():
        emulator.add_file(rel, data)
    dest = tmp_path / "data"
    assert run("pull", "drive:ds", str(dest), "-q")[0] == 0
    with _pull_held_at_a_new(emulator, dest, "--json") as proc:
        v2 = b"T" * len(files["ds/sub/t.txt"])
        store = drivestage.connect()
        old = store.resolve("ds/sub/t.txt")
        (tmp_path / "v2").write_bytes(v2)
        if how.startswith("same id"):
            assert store.upload(str(tmp_path / "v2"), store.resolve("ds/sub"), "t.txt",
                                replace=old).id == old.id
        else:
            store.delete(old)
            emulator.add_file("ds/sub/t.txt", v2)
        if how != "same id, no other pull":
            code, out, err = run("pull", "drive:ds/sub/t.txt", str(dest / "ds" / "sub"),
                                 "--json")
            assert code == 0, err
            assert json.loads(out)["action"] == "update"
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    summary = {os.path.basename(f["path"]): f for f in json.loads(out)["files"]}
    assert summary["t.txt"]["action"] == "cached"
    if how == "same id, no other pull":
        assert summary["t.txt"]["md5"] == hashlib.md5(files["ds/sub/t.txt"]).hexdigest()
        code, out, err = run("pull", "drive:ds", str(dest), "--json")
        assert code == 0, err
        assert json.loads(out)["actions"] == {"cached": len(files), "update": 1}
    else:
        assert summary["t.txt"]["md5"] == hashlib.md5(v2).hexdigest()
    files["ds/sub/t.txt"] = v2
    files["ds/a.new"] = b"new"
    _check_staged(emulator, dest, files)


@pytest.mark.parametrize("nth", range(1, 10) if _ALL else [5])
def test_a_folder_pull_killed_at_its_nth_request_for_bytes_then_rerun(emulator, drive_env,
                                                                       tmp_path, nth):
    """SIGKILL once the n-th request for a file's bytes reached Drive (4 small files and an
    archive at once, extracted), then a rerun: the right bytes and members, nothing of the
    killed run left, and the next rerun fetches nothing (all moments with
    DRIVESTAGE_TEST_SWEEP=all)."""
    from _kill import sigkill_when

    files = _files()
    members = {"m/1.txt": b"one", "m/2.txt": b"two" * 1000}
    files["ds/sub/a.tar"] = a_tar(members)
    for rel, data in files.items():
        emulator.add_file(rel, data)
    emulator.faults.latency(0.02, method="GET", path=r"alt=media")
    dest = tmp_path / "data"
    proc = cli_server().popen(["pull", "drive:ds", str(dest),
                               "-q", "--extract", "--chunk-size", "1MiB"],
                              env=child_env(emulator), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    sigkill_when(proc, lambda: len(media(emulator)) >= nth)
    emulator.faults.clear()
    code, out, err = run("pull", "drive:ds", str(dest), "--extract", "-q")
    assert code == 0, err
    _check_staged(emulator, dest, files, "--extract",
                  members={f"ds/sub/{m}": data for m, data in members.items()})


def test_leftovers_listed_at_the_start_and_gone_by_their_turn_are_skipped(
        emulator, drive_env, tmp_path):
    """A killed run's leftovers (another version's partial and record, a record's temporary
    file, a stamp of the name's other remote file) are in the folder pull's one listing,
    and removed by someone else before their file's turn: skipped without a word, and
    the pull stages every file."""
    files = _files()
    for rel, data in files.items():
        emulator.add_file(rel, data)
    files["ds/a.new"] = b"new"
    sub = tmp_path / "data" / "ds" / "sub"
    state = sub / ".drivestage"
    state.mkdir(parents=True)
    other = state / "t.txt@0123456789abcdef.json"
    other.write_text(json.dumps({"version": 2, "src": "drive:x/t.txt", "id": "gone",
                                 "file": "t.txt", "md5": "0" * 32, "size": 1}))
    left = [sub / ".big.bin.0123456789abcdef.partial", sub / ".big.bin.0123456789abcdef.ranges",
            sub / f"..t.txt.0123456789abcdef.ranges.{temps.namespace_tag()}-1.a1b2c3.tmp",
            other]
    for path in left[:-1]:
        path.write_bytes(b"x")
    with _pull_held_at_a_new(emulator, tmp_path / "data") as proc:
        for path in left:
            path.unlink()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode() and "WARNING" not in err.decode()
    _check_staged(emulator, tmp_path / "data", files)
