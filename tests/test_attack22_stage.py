"""attack22stage: attacks on what stage22 merged into `drivestage pull`.

1. transient per-file lock files (removed when a pull lets go);
2. a rerun of `pull --extract` writes only the members deleted by hand;
3. `pull -x /local/voc.zip DEST` extracts from the read-only original.

Each test drives the real CLI on real files; a hook inside the process stands in for
"another program" only where a moment inside the extraction must be hit.
"""
from __future__ import annotations

import io
import os
import time
import zipfile

import pytest

from _forkcli import PIPE, cli_server
from _kill import sigkill_when
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)
from test_messages_walk20 import _drivestage

import drivestage.stage_original as stage_original

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in members.items():
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


V1 = {f"ds/m{i}.bin": bytes([65 + i]) * 100 for i in range(5)}
V0 = {f"ds/m{i}.bin": bytes([97 + i]) * 100 for i in range(5)}  # same sizes, other bytes


def _tree(dest) -> dict[str, bytes]:
    out = {}
    for folder, dirs, files in os.walk(dest):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, dest)] = fh.read()
    return out


def _setup(tmp_path, members=V1):
    (tmp_path / "input").mkdir()
    archive = tmp_path / "input" / "voc.zip"
    archive.write_bytes(_zip(members))
    return archive, tmp_path / "data"


def _pull(archive, dest, *more):
    return _drivestage("pull", str(archive), str(dest), "-x", "-q", *more)


# ------------------------------------------------------------- 3. the original, attacked

def _race_over(monkeypatch, tmp_path) -> None:
    """The racing patch taken out for the rerun (``undo`` drops local_state's state folder
    too: it is put back, so the rerun sees the first pull's stamps and locks)."""
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))


def _rewrite_during_extraction(monkeypatch, archive, data: bytes) -> None:
    """Another program rewrites the original in place (same size) once it was hashed, while
    the members are extracted from it."""
    real = stage_original.Extraction

    class Racing(real):  # type: ignore[misc,valid-type]
        def __call__(self, *args, **kwargs):
            with open(archive, "r+b") as fh:
                fh.write(data)
            return super().__call__(*args, **kwargs)

    monkeypatch.setattr(stage_original, "Extraction", Racing)


def test_an_original_rewritten_during_the_extraction_then_put_back_is_extracted_again(
        local_state, tmp_path, monkeypatch):
    """The original was rewritten (same size, other bytes) while its members were
    extracted: the pull fails in one line, as it should. But the stamp kept the records of
    what that extraction wrote (the other bytes) as the members of the hashed md5, so once
    the original was put back (the same md5 again), the rerun kept those files in place and
    declared the wrong bytes staged ("extracted and md5 verified")."""
    archive, dest = _setup(tmp_path)
    good = archive.read_bytes()
    bad = _zip(V0)
    assert len(bad) == len(good)
    _rewrite_during_extraction(monkeypatch, archive, bad)
    r = _pull(archive, dest)
    assert r.exit_code == 1 and "changed while it was read" in r.output, r.output
    _race_over(monkeypatch, tmp_path)
    archive.write_bytes(good)                                      # put back as it was
    r = _pull(archive, dest)
    assert r.exit_code == 0, r.output
    assert _tree(dest) == V1


def test_an_original_rewritten_during_the_extraction_is_extracted_anew_by_the_rerun(
        local_state, tmp_path, monkeypatch):
    """Held: the new bytes (kept by the writer) are what the rerun stages."""
    archive, dest = _setup(tmp_path)
    bad = _zip(V0)
    _rewrite_during_extraction(monkeypatch, archive, bad)
    r = _pull(archive, dest)
    assert r.exit_code == 1 and "changed while it was read" in r.output, r.output
    _race_over(monkeypatch, tmp_path)
    r = _pull(archive, dest)
    assert r.exit_code == 0, r.output
    assert _tree(dest) == V0


def test_an_original_replaced_by_rename_during_the_extraction_is_not_staged(
        local_state, tmp_path, monkeypatch):
    """Held: a new file renamed over the original (a sync tool's way) while it is read."""
    archive, dest = _setup(tmp_path)
    real = stage_original.Extraction
    new = tmp_path / "input" / ".new"
    new.write_bytes(_zip(V0))

    class Racing(real):  # type: ignore[misc,valid-type]
        def __call__(self, *args, **kwargs):
            out = super().__call__(*args, **kwargs)
            os.replace(new, archive)
            return out

    monkeypatch.setattr(stage_original, "Extraction", Racing)
    r = _pull(archive, dest)
    assert r.exit_code == 1 and "changed while it was read" in r.output, r.output
    _race_over(monkeypatch, tmp_path)
    assert _pull(archive, dest).exit_code == 0
    assert _tree(dest) == V0


def test_a_symlinked_original_retargeted_is_an_update(local_state, tmp_path):
    """Held: SRC a link (Kaggle's inputs are links at times); pointed elsewhere later."""
    archive, dest = _setup(tmp_path)
    real = tmp_path / "input" / "real.zip"
    archive.rename(real)
    archive.symlink_to(real)
    assert _pull(archive, dest).exit_code == 0
    assert _tree(dest) == V1
    other = tmp_path / "input" / "other.zip"
    other.write_bytes(_zip({"ds/m0.bin": b"v2"}))
    archive.unlink()
    archive.symlink_to(other)
    assert _pull(archive, dest).exit_code == 0
    assert _tree(dest) == {"ds/m0.bin": b"v2"}


def test_an_original_that_is_a_fifo_is_refused_without_a_hang(local_state, tmp_path):
    archive, dest = _setup(tmp_path)
    archive.unlink()
    os.mkfifo(archive)
    r = _pull(archive, dest)
    assert r.exit_code == 2 and "FIFO" in r.output and r.output.count("\n") == 1, r.output


def test_an_original_deleted_after_staging_keeps_dest_and_says_so(local_state, tmp_path):
    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    archive.unlink()
    r = _pull(archive, dest)   # (a typed path not there: usage, exit 2; leftovers39)
    assert r.exit_code == 2 and "no such file or folder" in r.output, r.output
    assert _tree(dest) == V1


def test_a_member_named_like_the_original_inside_dest_never_overwrites_it(local_state,
                                                                         tmp_path):
    """Held: SRC is DEST/voc.zip and holds a member `voc.zip`."""
    dest = tmp_path / "data"
    dest.mkdir()
    archive = dest / "voc.zip"
    data = _zip({"voc.zip": b"evil", "x.bin": b"x"})
    archive.write_bytes(data)
    r = _pull(archive, dest)
    assert r.exit_code == 1 and "would replace" in r.output, r.output
    assert archive.read_bytes() == data


# --------------------------------------------------- 2. restoring members, attacked

def test_a_member_replaced_by_a_link_out_of_dest_is_put_back_not_written_through(
        local_state, tmp_path):
    """Held: the restore replaces the link; the file it pointed to is untouched."""
    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    (dest / "ds/m1.bin").unlink()
    (dest / "ds/m1.bin").symlink_to(outside)
    assert _pull(archive, dest).exit_code == 0
    assert outside.read_bytes() == b"secret"
    assert not (dest / "ds/m1.bin").is_symlink() and _tree(dest) == V1


def test_a_member_replaced_by_a_folder_of_the_users_is_refused_and_kept(local_state,
                                                                        tmp_path):
    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    (dest / "ds/m1.bin").unlink()
    (dest / "ds/m1.bin").mkdir()
    (dest / "ds/m1.bin/mine.txt").write_bytes(b"mine")
    r = _pull(archive, dest)
    assert r.exit_code == 1 and "is a folder" in r.output, r.output
    assert (dest / "ds/m1.bin/mine.txt").read_bytes() == b"mine"


def test_a_damaged_stamp_makes_the_rerun_extract_everything(local_state, tmp_path):
    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    state = dest / ".drivestage"
    for name in os.listdir(state):
        if name.endswith(".json"):
            (state / name).write_text("{garbage")
    (dest / "ds/m3.bin").unlink()
    (dest / "ds/m2.bin").write_bytes(b"Z" * 100)
    # No record says m2.bin was extracted: it may be the user's, never replaced unasked
    # (clobber32); its untouched siblings are the members' bytes (kept as they are).
    refused = _pull(archive, dest)
    assert refused.exit_code == 1
    assert "would replace 1 file in" in refused.stderr and "ds/m2.bin" in refused.stderr
    assert _tree(dest)["ds/m2.bin"] == b"Z" * 100 and "ds/m3.bin" not in _tree(dest)
    assert _pull(archive, dest, "--force").exit_code == 0
    assert _tree(dest) == V1


# ------------------------------------------------------------- 1. lock files, attacked

def _lock_files(dest) -> list[str]:
    state = dest / ".drivestage"
    return sorted(n for n in os.listdir(state) if n.endswith(".lock")) if state.is_dir() else []


def _signalled_in_its_lock(archive, dest, tmp_path, signum: int, landed):
    """``pull -x ARCHIVE DEST`` in a child, sent ``signum`` once its lock file is seen:
    (the child, its stdout, its stderr). The lock is held for the extraction alone (since
    stage23 the original's md5 is the listing's): a busy poller may miss that moment (1 run
    in ~12 at -n 2), or the pull let it go just before the signal, and the run tells
    nothing: until ``landed(child)``, it is made again from nothing (10 times at most)."""
    import shutil

    for _ in range(10):
        proc = cli_server().popen(["pull", str(archive), str(dest), "-x", "-q"], stdout=PIPE,
                                  stderr=PIPE)
        try:
            deadline = time.monotonic() + 30
            while not _lock_files(dest) and proc.poll() is None:
                assert time.monotonic() < deadline, "the pull never took its lock"
            if proc.poll() is None:
                proc.send_signal(signum)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if landed(proc):
            break
        shutil.rmtree(dest)
        shutil.rmtree(tmp_path / "state", ignore_errors=True)
    return proc, out, err


def test_a_pull_killed_while_holding_its_lock_leaves_a_file_the_next_pull_removes(
        local_state, tmp_path):
    """SIGKILL while the lock is held (the file stays: the kernel only drops the lock); the
    next pull takes it, stages, and removes it."""
    import signal

    members = {f"ds/f{i:03d}.bin": os.urandom(1) * 200_000 for i in range(60)}
    archive, dest = _setup(tmp_path, members)
    proc, _, _ = _signalled_in_its_lock(
        archive, dest, tmp_path, signal.SIGKILL,
        landed=lambda p: p.returncode == -signal.SIGKILL and bool(_lock_files(dest)))
    assert _lock_files(dest) == ["voc.zip.lock"]
    r = _pull(archive, dest)
    assert r.exit_code == 0, r.output
    assert _lock_files(dest) == [] and _tree(dest) == members


@pytest.mark.parametrize("kind", ["folder", "link"])
def test_a_lock_file_replaced_by_a_folder_or_link_names_it_not_the_state_folder(
        kind, local_state, tmp_path):
    """A `.drivestage/voc.zip.lock` that is a folder (or a link) made the pull say that
    `.drivestage` itself "is a link, a file or another user's folder" and to move it away:
    following that advice threw away every stamp of DEST for one odd entry inside."""
    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    lock = dest / ".drivestage" / "voc.zip.lock"
    outside = tmp_path / "outside"
    if kind == "folder":
        lock.mkdir()
    else:
        lock.symlink_to(outside)
    (dest / "ds/m1.bin").unlink()
    r = _pull(archive, dest)
    assert r.exit_code == 1, r.output
    line = r.output.strip().splitlines()[-1]
    assert str(lock) in line and "Move it away" not in line, line
    assert not outside.exists()


def test_an_original_damaged_during_the_extraction_says_it_changed_not_that_it_is_bad(
        local_state, tmp_path, monkeypatch):
    """A write into the middle of the original (one member's bytes) while it is extracted
    made the extraction fail on the member's CRC, before the identity was checked: the
    line blamed the archive, and the stamp kept the records of what had been written."""
    archive, dest = _setup(tmp_path)
    good = archive.read_bytes()
    at = good.index(b"A" * 100)
    damaged = good[:at] + b"X" * 100 + good[at + 100:]
    _rewrite_during_extraction(monkeypatch, archive, damaged)
    r = _pull(archive, dest)
    assert r.exit_code == 1 and "changed while it was read" in r.output, r.output
    _race_over(monkeypatch, tmp_path)
    archive.write_bytes(good)
    r = _pull(archive, dest)
    assert r.exit_code == 0, r.output
    assert _tree(dest) == V1


def test_a_hard_link_of_the_original_written_with_its_mtime_put_back_is_noticed(
        local_state, tmp_path):
    """Held: the identity is the inode's; a write through another name changes its ctime."""
    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    twin = tmp_path / "twin.zip"
    os.link(archive, twin)
    st = archive.stat()
    twin.write_bytes(_zip(V0))                            # same size, other bytes
    os.utime(twin, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _pull(archive, dest).exit_code == 0
    assert _tree(dest) == V0


def test_a_member_deleted_while_the_restore_runs_is_not_declared_staged(
        local_state, tmp_path, monkeypatch):
    """Held: a kept member (in place when the restore was planned) deleted by another
    program once the missing ones were written: exit 1 in one line, not "staged"; the rerun
    puts both back."""
    import drivestage.extract as extract_pkg

    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    (dest / "ds/m1.bin").unlink()
    real = extract_pkg.extract

    def then_deleted(*args, **kwargs):
        out = real(*args, **kwargs)
        (dest / "ds/m3.bin").unlink()
        return out

    monkeypatch.setattr(extract_pkg, "extract", then_deleted)
    r = _pull(archive, dest)
    _race_over(monkeypatch, tmp_path)
    assert r.exit_code == 1 and r.output.count("\n") == 1, r.output
    assert "m3.bin changed while" in r.output, r.output
    assert _pull(archive, dest).exit_code == 0
    assert _tree(dest) == V1


def test_the_dests_own_staged_copy_given_as_src(local_state, tmp_path):
    """`pull /in/voc.zip D` (a copy in D), then `pull D/voc.zip D -x`, then the rerun."""
    archive, dest = _setup(tmp_path)
    assert _drivestage("pull", str(archive), str(dest), "-q").exit_code == 0
    copy = dest / "voc.zip"
    data = copy.read_bytes()
    for _ in range(2):
        r = _pull(copy, dest)
        assert r.exit_code == 0, r.output
    (dest / "ds/m2.bin").unlink()
    assert _pull(copy, dest).exit_code == 0
    assert copy.read_bytes() == data and {**V1, "voc.zip": data} == _tree(dest)


def test_a_restore_whose_archive_in_dest_was_deleted_downloads_it_again(
        emulator, drive_env, local_state, tmp_path):
    emulator.add_file("VOC_datasets/data.zip", _zip(V1))
    dest = tmp_path / "data"
    src = "drive:VOC_datasets/data.zip"
    assert _drivestage("pull", src, str(dest), "-x", "-q").exit_code == 0
    (dest / "data.zip").unlink()
    (dest / "ds/m1.bin").unlink()
    r = _drivestage("pull", src, str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    assert _tree(dest) == {**V1, "data.zip": _zip(V1)}


def test_one_dest_fed_from_drive_then_from_a_local_original_of_another_version(
        emulator, drive_env, local_state, tmp_path):
    """A Drive v1 of voc.zip extracted into D, then a local v2 of that name: the copy pull
    said that v2 replaces the staged copy of drive:…voc.zip and that its members stay. The
    original replaces no copy: nothing was said, and D held v1's m1..m4 beside v2's members
    under an "extracted" summary. It is said now, once."""
    emulator.add_file("VOC_datasets/voc.zip", _zip(V1))
    dest = tmp_path / "data"
    assert _drivestage("pull", "drive:VOC_datasets/voc.zip", str(dest), "-x", "-q"
                       ).exit_code == 0
    (tmp_path / "input").mkdir()
    local = tmp_path / "input" / "voc.zip"
    v2 = {"ds/m0.bin": b"v2", "ds/new.bin": b"new"}
    local.write_bytes(_zip(v2))
    r = _pull(local, dest)
    assert r.exit_code == 0, r.output
    said = [line.split(": ", 1)[1] for line in r.stderr.splitlines()
            if "extracted beside them" in line]
    assert said == [f"{dest} holds the members of drive:VOC_datasets/voc.zip, extracted from "
                    f"another file named voc.zip; {local} is extracted beside them and they "
                    "stay. Pull files of one name into separate folders to keep them apart"]
    got = _tree(dest)
    assert got["ds/m0.bin"] == b"v2" and got["ds/new.bin"] == b"new"
    # The Drive file's pull puts its own members back (v2's new.bin stays, as documented).
    r = _drivestage("pull", "drive:VOC_datasets/voc.zip", str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    got = _tree(dest)
    assert {k: got[k] for k in V1} == V1


_CHILD = r"""
import os, sys
from drivestage.extract.statedir import state_lock
folder, mode = sys.argv[1:3]
said = []
def waiting():
    if not said:
        said.append(1)
        print("waiting", flush=True)
if mode == "hold":
    with state_lock(folder, "x.lock", waiting, transient=True):
        print("held", flush=True)
        sys.stdin.read()
else:
    marker = os.path.join(folder, "inside")
    for _ in range(150):
        with state_lock(folder, "x.lock", waiting, transient=True):
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # alone?
            os.unlink(marker)
    print("done", flush=True)
"""


def test_three_processes_on_one_lock_one_killed_while_holding_it(tmp_path):
    """The holder is SIGKILLed while two others wait on its file: they go on, one at a
    time (an O_EXCL marker inside), and the last to let go removes the file."""
    def child(mode):
        return cli_server().popen([str(tmp_path), mode], script=_CHILD, stdin=PIPE,
                                  stdout=PIPE, stderr=PIPE, text=True)

    holder = child("hold")
    assert holder.stdout.readline() == "held\n"
    waiters = [child("take"), child("take")]
    try:
        for w in waiters:
            assert w.stdout.readline() == "waiting\n"
        sigkill_when(holder, lambda: True)
        for w in waiters:
            out, err = w.communicate(timeout=60)
            assert w.returncode == 0 and out == "done\n", err
    finally:
        for w in waiters:
            if w.poll() is None:
                w.kill()
                w.communicate()
    assert sorted(os.listdir(tmp_path / ".drivestage")) == []


def test_a_pull_interrupted_while_holding_its_lock_leaves_no_lock_and_a_rerun_stages(
        local_state, tmp_path):
    """Ctrl-C while the lock is held: the lock file goes with it, nothing is said as a
    traceback, and the rerun stages the archive."""
    import signal

    members = {f"ds/f{i:03d}.bin": os.urandom(1) * 200_000 for i in range(60)}
    archive, dest = _setup(tmp_path, members)
    proc, out, err = _signalled_in_its_lock(archive, dest, tmp_path, signal.SIGINT,
                                            landed=lambda p: p.returncode != 0)
    assert proc.returncode != 0, "the pull ended before its lock was seen, 10 times"
    assert b"Traceback" not in err, err.decode()
    assert _lock_files(dest) == []
    r = _pull(archive, dest)
    assert r.exit_code == 0, r.output
    assert _tree(dest) == members


def test_two_pulls_of_one_original_into_one_dest_from_two_state_dirs(tmp_path):
    """Two processes (each its own DRIVESTAGE_STATE_DIR: the per-file lock is DEST's) pull
    one local archive into one DEST at once: both exit 0, DEST is the archive, no lock."""
    members = {f"ds/f{i:03d}.bin": os.urandom(1) * 50_000 for i in range(40)}
    archive, dest = _setup(tmp_path, members)
    procs = [cli_server().popen(["pull", str(archive), str(dest), "-x", "-q"],
                                env=dict(os.environ,
                                         DRIVESTAGE_STATE_DIR=str(tmp_path / f"state{i}")),
                                stdout=PIPE, stderr=PIPE)
             for i in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    assert _tree(dest) == members and _lock_files(dest) == []


@pytest.mark.parametrize("how", ["subfolder", "resized", "same size"])
def test_members_removed_whole_or_changed_by_hand(how, local_state, tmp_path):
    """Held: a folder removed whole comes back; a member of another size is put back; one
    of the same size with other bytes (a later mtime) too, since pull29 (it stayed)."""
    import shutil

    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    if how == "subfolder":
        shutil.rmtree(dest / "ds")
    elif how == "resized":
        (dest / "ds/m2.bin").write_bytes(b"Z" * 50)
    else:
        (dest / "ds/m2.bin").write_bytes(b"Z" * 100)
    assert _pull(archive, dest).exit_code == 0
    assert _tree(dest) == V1


def test_an_original_linked_to_a_device_is_refused(local_state, tmp_path):
    archive, dest = _setup(tmp_path)
    archive.unlink()
    archive.symlink_to("/dev/zero")
    r = _pull(archive, dest)
    assert r.exit_code in (1, 2) and r.output.count("\n") == 1, r.output


def test_a_restore_from_the_original_killed_in_its_extraction_is_finished_by_the_rerun(
        local_state, tmp_path):
    """SIGKILL in the middle of the restore's extraction (its temporary folder in DEST, 19 of
    59 members written): the rerun puts back every deleted member with the original's bytes
    and leaves no lock, no temporary folder. (The child kills itself as it opens the 20th
    member: watching DEST for the temporary folder missed it when the restore was quick.)"""
    from test_attack16_small import KILLER

    members = {f"ds/f{i:03d}.bin": os.urandom(1) * 250_000 for i in range(60)}
    archive, dest = _setup(tmp_path, members)
    assert _pull(archive, dest).exit_code == 0
    for i in range(1, 60):
        (dest / f"ds/f{i:03d}.bin").unlink()
    proc = cli_server().run(["open", "('ds/f", "20", "pull", str(archive), str(dest), "-x",
                             "-q"], script=KILLER, timeout=120)
    assert proc.returncode == -9, proc.stderr
    left = sorted(os.listdir(dest))
    assert any(n.startswith(".drivestage-extract") for n in left), left
    r = _pull(archive, dest)
    assert r.exit_code == 0, r.output
    assert _lock_files(dest) == [], left
    assert sorted(os.listdir(dest)) == [".drivestage", "ds"], left
    assert _tree(dest) == members


@pytest.mark.parametrize("where", ["a file of the user's", "a member of another archive"])
def test_an_original_inside_dest_is_never_replaced_by_its_own_member(where, local_state,
                                                                     tmp_path):
    """Held: SRC is DEST/raw/voc.zip (the user's, or a member another pull extracted) and
    holds a member of that very path: refused in one line, the original intact."""
    dest = tmp_path / "data"
    inner = _zip({"raw/voc.zip": b"evil", "x.bin": b"x"})
    if where == "a member of another archive":
        outer, dest = _setup(tmp_path, {"raw/voc.zip": inner})
        assert _pull(outer, dest).exit_code == 0
    else:
        (dest / "raw").mkdir(parents=True)
        (dest / "raw/voc.zip").write_bytes(inner)
    r = _pull(dest / "raw/voc.zip", dest)
    assert r.exit_code == 1 and "would replace" in r.output, r.output
    assert (dest / "raw/voc.zip").read_bytes() == inner and not (dest / "x.bin").exists()


@pytest.mark.slow
def test_three_pulls_of_one_drive_folder_two_state_dirs_one_killed(
        emulator, drive_env, local_state, tmp_path):
    """Three `pull` processes of one Drive folder into one DEST (each its own
    DRIVESTAGE_STATE_DIR); one is SIGKILLed once files arrive. The two others exit 0, every
    file is whole, and once they are done no lock file is left (the killed one's too)."""
    from _cli import child_env
    from test_messages_walk20 import _media_gets

    files = {f"img/{i:03d}.bin": os.urandom(20_000) for i in range(12)}
    for rel, data in files.items():
        emulator.add_file(f"Datasets/small/{rel}", data)
    dest = tmp_path / "data"
    procs = []
    for i in range(3):
        env = dict(child_env(emulator), DRIVESTAGE_STATE_DIR=str(tmp_path / f"state{i}"))
        procs.append(cli_server().popen(["pull", "drive:Datasets/small", str(dest), "-q"],
                                        env=env, stdout=PIPE, stderr=PIPE, text=True))
    img = dest / "small" / "img"
    sigkill_when(procs[0], lambda: img.is_dir() and len(os.listdir(img)) >= 2,
                 "no file arrived")
    outs = [p.communicate(timeout=120) for p in procs[1:]]
    assert [p.returncode for p in procs[1:]] == [0, 0], outs
    for rel, data in files.items():
        assert (dest / "small" / rel).read_bytes() == data
    locks = [n for f, _, ns in os.walk(dest) for n in ns if n.endswith(".lock")]
    assert locks == []
    gets = len(_media_gets(emulator))
    r = _drivestage("pull", "drive:Datasets/small", str(dest), "-q")
    assert r.exit_code == 0 and len(_media_gets(emulator)) == gets, r.output


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
def test_a_ctrl_c_at_any_point_of_a_transient_lock_leaves_no_lock_file(tmp_path):
    """A Ctrl-C right after the lock file was made (before the lock counted as held), or
    inside the release before its removal, left the file: "no lock file per staged file"
    held only for pulls that were not interrupted (1 run in 8 of the Ctrl-C test above)."""
    from drivestage.extract.statedir import state_lock
    from _sweep import every
    from test_interrupt_locks import _each_ctrl_c, _open_under

    def work() -> None:
        with state_lock(str(tmp_path), "x.lock", lambda: None, transient=True) as held:
            assert held

    left = []
    # (every bytecode with DRIVESTAGE_TEST_SWEEP=all)
    for point in _each_ctrl_c(work, step=every(3)):
        assert _open_under(tmp_path / ".drivestage") == [], str(point)
        if (tmp_path / ".drivestage").is_dir() and os.listdir(tmp_path / ".drivestage"):
            left.append(str(point))
            os.unlink(tmp_path / ".drivestage" / "x.lock")
    assert left == []


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["temporary folder", "first member merged"])
def test_a_first_extraction_from_the_original_killed_is_finished_by_the_rerun(
        moment, local_state, tmp_path):
    """SIGKILL during the first extraction from the original (its stamp has no members
    yet): the rerun stages every member with the original's bytes, nothing left over."""
    import shutil
    import signal

    members = {f"ds/f{i:03d}.bin": os.urandom(1) * 250_000 for i in range(60)}
    archive, dest = _setup(tmp_path, members)
    if moment == "temporary folder":
        ready = lambda: dest.is_dir() and any(n.startswith(".drivestage-extract")  # noqa
                                              for n in os.listdir(dest))
    else:
        ready = lambda: (dest / "ds").is_dir()  # noqa: E731
    # The extraction is one read that hashes it too (original25): its temporary folder lives
    # for some 50 ms here. A run the poller did not catch in it tells nothing: made again.
    for _ in range(10):
        proc = cli_server().popen(["pull", str(archive), str(dest), "-x", "-q"], stdout=PIPE,
                                  stderr=PIPE)
        try:
            deadline = time.monotonic() + 60
            while not ready() and proc.poll() is None:
                assert time.monotonic() < deadline, "no extraction began"
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        if proc.returncode == -signal.SIGKILL:
            break
        shutil.rmtree(dest)
        shutil.rmtree(tmp_path / "state", ignore_errors=True)
    assert proc.returncode == -signal.SIGKILL, "no run was killed in its extraction"
    left = sorted(os.listdir(dest))
    r = _pull(archive, dest)
    assert r.exit_code == 0, (left, r.output)
    assert sorted(os.listdir(dest)) == [".drivestage", "ds"], left
    assert _tree(dest) == members and _lock_files(dest) == []


@pytest.mark.parametrize("deleted", ["ds/link.bin", "ds/a.bin", "ds/sym"])
def test_a_tar_members_link_or_its_file_deleted_comes_back_linked(deleted, local_state,
                                                                 tmp_path):
    """Held: a hard link (or its file, or a symlink) deleted by hand from a tar extracted
    from the original: the restore puts it back as the archive has it (the hard-link group
    whole, sharing one inode again), the rest in place."""
    import tarfile

    (tmp_path / "input").mkdir()
    archive = tmp_path / "input" / "voc.tar"
    with tarfile.open(archive, "w") as tf:
        for name, data in (("ds/a.bin", b"A" * 300), ("ds/b.bin", b"B" * 300)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        hard = tarfile.TarInfo("ds/link.bin")
        hard.type, hard.linkname = tarfile.LNKTYPE, "ds/a.bin"
        tf.addfile(hard)
        sym = tarfile.TarInfo("ds/sym")
        sym.type, sym.linkname = tarfile.SYMTYPE, "b.bin"
        tf.addfile(sym)
    dest = tmp_path / "data"
    assert _pull(archive, dest).exit_code == 0
    b_before = os.lstat(dest / "ds/b.bin").st_ino
    os.unlink(dest / deleted)
    r = _pull(archive, dest)
    assert r.exit_code == 0, r.output
    assert (dest / "ds/a.bin").read_bytes() == (dest / "ds/link.bin").read_bytes() == b"A" * 300
    assert os.lstat(dest / "ds/a.bin").st_ino == os.lstat(dest / "ds/link.bin").st_ino
    assert os.readlink(dest / "ds/sym") == "b.bin"
    assert os.lstat(dest / "ds/b.bin").st_ino == b_before
