"""docs/troubleshooting.md, "Duplicate names and paths": each message made to happen (see
tests/_messages.py).

Errors come from ``drivestage pull`` / ``push`` run in this process against the emulator;
warnings from the library calls the commands make, captured with caplog (a command run
replaces the log handlers caplog puts on drivestage's logger, so no test here runs one
before it captures).
"""
from __future__ import annotations

import io
import json
import logging
import os
import threading
import zipfile

import pytest
from click.testing import CliRunner

import drivestage
from _archives import a_tar
from _messages import log_text, renders, shown
from drivestage.cli import cli
from drivestage.drive.resources import FOLDER_MIME

DOC = "application/vnd.google-apps.document"


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "data"


def command(*args: str) -> tuple[int, str]:
    """``drivestage ARGS`` in this process: its exit code and its Error: line."""
    result = CliRunner().invoke(cli, list(args))
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), (result.stderr, result.exception)
    return result.exit_code, lines[-1]


def warnings(caplog, fragment: str) -> list[logging.LogRecord]:
    """drivestage's warnings that hold ``fragment``."""
    return [r for r in caplog.records if r.name.startswith("drivestage")
            and r.levelno == logging.WARNING and fragment in r.getMessage()]


def write(path, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def live(emu) -> list[str]:
    """Titles of the files (not folders) on Drive outside the trash."""
    return sorted(f["title"] for f in emu.files()
                  if not f["labels"]["trashed"] and f["mimeType"] != FOLDER_MIME)


def a_zip(members: dict[str, bytes]) -> bytes:
    """A zip of ``members`` with fixed member times (the same bytes every time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), data)
    return buf.getvalue()


# ------------------------------------------------------------------ names on Drive

@renders("items with that exact name (ids")
def test_a_path_that_names_two_files(emulator, dest):
    a = emulator.add_file("dup/x.bin", b"1")
    b = emulator.add_file("dup/x.bin", b"2")
    code, line = command("pull", "drive:dup/x.bin", str(dest))
    assert code == 1
    shown("items with that exact name (ids", line)
    assert f"(ids {a}, {b})" in line or f"(ids {b}, {a})" in line
    assert not dest.exists() or os.listdir(dest) == []


@renders("shared drives are named")
def test_two_shared_drives_of_one_name(emulator, dest):
    ids = [emulator.add_shared_drive("Team") for _ in range(2)]
    emulator.add_file("x.bin", b"x", drive_id=ids[0])
    code, line = command("pull", "drive:shared/Team/x.bin", str(dest))
    assert code == 1
    shown("shared drives are named", line)
    assert all(i in line for i in ids)


@renders("no shared drive named")
def test_a_shared_drive_this_account_is_not_in(emulator, dest):
    emulator.add_shared_drive("Team Data")
    code, line = command("pull", "drive:shared/team data/x.bin", str(dest))
    assert code == 1
    shown("no shared drive named", line)
    assert "this account sees: 'Team Data'" in line


@renders("names … items (ids … a folder pull needs one local path per item")
def test_a_folder_pull_of_two_items_of_one_name(emulator, dest):
    emulator.add_file("F/ok.txt", b"ok")
    a = emulator.add_file("F/sub/dup.txt", b"1")
    b = emulator.add_file("F/sub/dup.txt", b"2")
    code, line = command("pull", "drive:F", str(dest))
    assert code == 1
    shown("names … items (ids … a folder pull needs one local path per item", line)
    assert "drive:F/sub/dup.txt names 2 items" in line and a in line and b in line
    assert not (dest / "F/ok.txt").exists()  # nothing was downloaded


@renders("is where drivestage keeps its stamps and locks")
def test_a_remote_item_of_a_name_drivestage_keeps(emulator, dest):
    emulator.add_file("R/ok.txt", b"ok")
    emulator.add_file("R/.drivestage-x", b"{}")
    code, line = command("pull", "drive:R/.drivestage-x", str(dest))
    assert code == 2
    shown("is where drivestage keeps its stamps and locks", line)
    assert not (dest / ".drivestage-x").exists()


@renders("is in the trash; restore it first")
def test_a_path_into_the_trash(emulator, dest):
    fid = emulator.add_file("gone.bin", b"g")
    emulator.store.set_trashed(fid, True)
    code, line = command("pull", f"drive:id:{fid}", str(dest))
    assert code == 1
    shown("is in the trash; restore it first", line)
    assert not (dest / "gone.bin").exists()


@renders("has no binary content (a Google Docs")
def test_a_google_doc_has_no_bytes_to_pull(emulator, dest):
    emulator.add_file("notes", b"", mime_type=DOC)
    code, line = command("pull", "drive:notes", str(dest))
    assert code == 2
    shown("has no binary content (a Google Docs", line)
    assert f"its type is {DOC}" in line


@renders("is the root of the drive; name a folder in it")
def test_a_pull_of_the_whole_drive(emulator, dest):
    emulator.add_file("Datasets/a.bin", b"a")
    code, line = command("pull", "drive:", str(dest))
    assert code == 2
    shown("is the root of the drive; name a folder in it", line)
    assert not dest.exists() or os.listdir(dest) == []


@renders("skipping … it has no binary content")
def test_a_folder_pull_leaves_google_docs_out(emulator, dest, caplog):
    emulator.add_file("F/a.txt", b"a")
    emulator.add_file("F/notes", b"", mime_type=DOC)
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        result = drivestage.pull("drive:F", str(dest), quiet=True)
    shown("skipping … it has no binary content",
          log_text(warnings(caplog, "no binary content")))
    assert result.skipped == ["drive:F/notes"]
    assert (dest / "F/a.txt").read_bytes() == b"a" and not (dest / "F/notes").exists()


# ------------------------------------------------------------------ duplicates push meets

@renders("items share this name (ids")
def test_prune_names_the_copies_of_a_checkpoint(emulator, store, caplog):
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy

    for epoch in (1, 2):
        emulator.add_file(f"Models/logs/epoch_{epoch:03d}.pt", b"w" * epoch)
        emulator.add_file(f"Models/logs/epoch_{epoch:03d}.pt.json",
                          json.dumps({"epoch": epoch}).encode())
    twin = emulator.add_file("Models/logs/epoch_002.pt", b"w" * 2)  # a push between its steps
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        plan = prune("Models/logs", RetentionPolicy(keep_last=1), store=store)
    text = log_text(warnings(caplog, "share this name"))
    shown("items share this name (ids", text)
    assert "epoch_002.pt: 2 items share this name" in text and twin in text
    # Retention deletes epoch 1 only: the newest verified checkpoint stays, in both copies.
    assert {d.name for d in plan.to_delete} == {"epoch_001.pt", "epoch_001.pt.json"}
    assert live(emulator) == ["epoch_002.pt", "epoch_002.pt", "epoch_002.pt.json"]


@renders("files had this name (ids")
def test_push_repairs_the_copies_two_machines_left(emulator, store, env, caplog):
    from drivestage.upload_tree import push

    src = env / "logs"
    write(str(src / "best.pt"), b"new weights")
    ids = [emulator.add_file("Models/logs/best.pt", b"old weights %d" % i) for i in range(2)]
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        result = push(str(src), "Models/logs", store=store)
    text = log_text(warnings(caplog, "had this name"))
    shown("files had this name (ids", text)
    assert all(i in text for i in ids)
    assert result.replaced_duplicates == ["best.pt"] and live(emulator) == ["best.pt"]


@renders("could not read its sidecar … on the store")
def test_a_replaced_checkpoint_whose_sidecar_on_drive_cannot_be_read(emulator, store, env,
                                                                      caplog):
    """best.json is on Drive only (deleted here) and reading it fails: it may vouch for the
    old best.pt, so that copy stays beside the new one."""
    import hashlib

    from drivestage.upload_tree import push

    old, new = b"old weights" * 20, b"new weights" * 30
    emulator.add_file("Models/logs/best.pt", old)
    side = emulator.add_file("Models/logs/best.json", json.dumps(
        {"epoch": 3, "md5": hashlib.md5(old).hexdigest(), "size": len(old)}).encode())
    write(str(env / "logs/best.pt"), new)
    emulator.faults.inject(method="GET", path=rf"^/drive/v2/files/{side}", status=400,
                           reason="badRequest", times=None)
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        push(str(env / "logs"), "Models/logs", store=store)
    text = log_text(warnings(caplog, "could not read its sidecar"))
    shown("could not read its sidecar … on the store", text)
    assert "best.pt: could not read its sidecar best.json on the store" in text
    assert sorted(f["md5Checksum"] for f in emulator.files() if f["title"] == "best.pt"
                  and not f["labels"]["trashed"]) == sorted(hashlib.md5(d).hexdigest()
                                                           for d in (old, new))


@renders("folders have this name (ids")
def test_push_into_one_of_two_folders_of_one_name(emulator, store, env, caplog):
    from drivestage.upload_tree import push

    write(str(env / "logs/tb/a.txt"), b"a")
    logs = emulator.add_folder("Models/logs")
    ids = []
    for _ in range(2):  # what two older drivestages on two machines could leave
        f = store.drive.CreateFile({"title": "tb", "mimeType": FOLDER_MIME,
                                    "parents": [{"id": logs}]})
        f.Upload()
        ids.append(f["id"])
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        push(str(env / "logs"), "Models/logs", store=store)
    text = log_text(warnings(caplog, "folders have this name"))
    shown("folders have this name (ids", text)
    assert ", ".join(sorted(ids)) in text


@renders("another push into … is running")
def test_a_second_push_into_one_folder_waits(emulator, store, env, caplog):
    """Two pushes into one folder in one process (a CheckpointSync mirror and a manual push):
    the first is held inside its upload until the second has said that it waits."""
    from drivestage.upload_tree import push

    write(str(env / "a/one.txt"), b"one")
    write(str(env / "b/two.txt"), b"two")
    inside, release, waiting = threading.Event(), threading.Event(), threading.Event()

    class _Waits(logging.Handler):
        def emit(self, record):
            if "is running" in record.getMessage():
                waiting.set()

    def held(n: int) -> None:  # the first push's progress: it is uploading now
        inside.set()
        release.wait(30)

    failures = []

    def run(src, **kw):
        try:
            push(str(env / src), "Models/logs", store=store, **kw)
        except BaseException as exc:  # reported below
            failures.append(exc)

    signal = _Waits()
    logging.getLogger("drivestage.locks").addHandler(signal)
    first = threading.Thread(target=run, args=("a",), kwargs={"progress": held})
    second = threading.Thread(target=run, args=("b",))
    try:
        with caplog.at_level(logging.WARNING, logger="drivestage"):
            first.start()
            assert inside.wait(30)
            second.start()
            assert waiting.wait(30), "the second push never said it waits"
            release.set()
            first.join(30)
            second.join(30)
    finally:
        release.set()
        logging.getLogger("drivestage.locks").removeHandler(signal)
    assert failures == []
    shown("another push into … is running", log_text(warnings(caplog, "is running")))
    assert live(emulator) == ["one.txt", "two.txt"]


@renders("another pull of … into … is running; waiting for it")
def test_a_second_pull_into_one_folder_waits(emulator, dest, caplog):
    """The first pull is held where it starts to download until the second has said that it
    waits; the second then finds the file staged."""
    emulator.add_file("shared.bin", b"s" * 1000)
    inside, release, waiting = threading.Event(), threading.Event(), threading.Event()

    class _Waits(logging.Handler):
        def emit(self, record):
            if "is running; waiting" in record.getMessage():
                waiting.set()

    def held(label, total, initial):  # the first pull's progress bar: it downloads now
        inside.set()
        release.wait(30)
        return None

    results, failures = [], []

    def run(**kw):
        try:
            results.append(drivestage.pull("drive:shared.bin", str(dest), **kw).action)
        except BaseException as exc:  # reported below
            failures.append(exc)

    signal = _Waits()
    logging.getLogger("drivestage.stage_file").addHandler(signal)
    first = threading.Thread(target=run, kwargs={"progress": held})
    second = threading.Thread(target=run, kwargs={"quiet": True})
    try:
        with caplog.at_level(logging.WARNING, logger="drivestage"):
            first.start()
            assert inside.wait(30)
            second.start()
            assert waiting.wait(30), "the second pull never said it waits"
            release.set()
            first.join(30)
            second.join(30)
    finally:
        release.set()
        logging.getLogger("drivestage.stage_file").removeHandler(signal)
    assert failures == []
    shown("another pull of … into … is running; waiting for it",
          log_text(warnings(caplog, "is running; waiting")))
    assert sorted(results) == ["cached", "download"]
    assert (dest / "shared.bin").read_bytes() == b"s" * 1000


# ------------------------------------------------------------------ push --delete, links

@renders("refusing --delete into")
def test_delete_into_the_top_of_my_drive(emulator, env):
    emulator.add_file("VOC_datasets/VOC.zip", b"precious")
    (env / "empty").mkdir()
    code, line = command("push", str(env / "empty"), "drive:", "--delete")
    assert code == 2
    shown("refusing --delete into", line)
    assert live(emulator) == ["VOC.zip"]
    assert not [f for f in emulator.files() if f["labels"]["trashed"]]


@renders("push --delete would remove … from")
def test_delete_far_beyond_src(emulator, env):
    for i in range(12):
        emulator.add_file(f"Models/logs/junk_{i:02d}.txt", b"j")
    (env / "empty").mkdir()
    code, line = command("push", str(env / "empty"), "drive:Models/logs", "--delete")
    assert code == 1
    shown("push --delete would remove … from", line)
    assert "--max-delete 12" in line
    assert len(live(emulator)) == 12
    assert not [f for f in emulator.files() if f["labels"]["trashed"]]


@renders("--delete: removing … from … that are not in SRC")
def test_delete_says_what_it_removes_and_where_to(emulator, store, env, caplog):
    from drivestage.upload_tree import push

    emulator.add_file("Models/logs/old.txt", b"o")
    emulator.add_file("Models/logs/older.txt", b"o")
    write(str(env / "logs/a.txt"), b"a")
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        push(str(env / "logs"), "Models/logs", store=store, delete=True)
    text = log_text(warnings(caplog, "that are not in SRC"))
    shown("--delete: removing … from … that are not in SRC", text)
    assert "removing 2 items from drive:Models/logs that are not in SRC (to the Drive trash)" \
        in text
    assert live(emulator) == ["a.txt"]


@renders("skipped … that lead outside SRC, to a folder or nowhere")
def test_links_leaving_src_are_skipped(emulator, store, env, caplog):
    from drivestage.upload_tree import push

    src, outside = env / "logs", env / "outside"
    write(str(src / "a.txt"), b"mine")
    write(str(outside / "secret.txt"), b"not yours")
    os.symlink(outside / "secret.txt", src / "secret.txt")
    os.symlink(src / "nowhere", src / "dangling")
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        result = push(str(src), "Models/logs", store=store)
    text = log_text(warnings(caplog, "that lead outside SRC"))
    shown("skipped … that lead outside SRC, to a folder or nowhere", text)
    assert "skipped 2 links" in text and "(dangling, secret.txt)" in text
    assert result.skipped_links == ["dangling", "secret.txt"] and live(emulator) == ["a.txt"]


# ------------------------------------------------------------------ what pull leaves in DEST

@renders("is the staged copy of … replaces it")
def test_two_remote_files_of_one_name_pulled_into_one_dest(emulator, dest, caplog):
    emulator.add_file("one/data.zip", a_zip({"one/a.txt": b"from one"}))
    emulator.add_file("two/data.zip", a_zip({"two/b.txt": b"from two"}))
    drivestage.pull("drive:one/data.zip", str(dest), extract=True, quiet=True)
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        drivestage.pull("drive:two/data.zip", str(dest), extract=True, quiet=True)
    text = log_text(warnings(caplog, "is the staged copy of"))
    shown("is the staged copy of … replaces it", text)
    assert f"{dest / 'data.zip'} is the staged copy of drive:one/data.zip; " \
        "drive:two/data.zip replaces it" in text
    assert (dest / "one/a.txt").read_bytes() == b"from one"
    assert (dest / "two/b.txt").read_bytes() == b"from two"


V1 = {"ds/keep.txt": b"kept", "ds/gone.txt": b"only in v1"}
V2 = {"ds/keep.txt": b"kept, v2", "ds/new.txt": b"new in v2"}


@renders("of the previous version of … not removed: it was staged by drivestage 0.1.0")
def test_an_update_of_what_drivestage_0_1_0_extracted(emulator, dest, tmp_path, caplog):
    from drivestage.extract import extract_archive

    fid = emulator.add_file("d/v.zip", a_zip(V1))
    store = drivestage.connect()
    entry = store.resolve("d/v.zip")
    dest.mkdir()
    (dest / "v.zip").write_bytes(a_zip(V1))
    extract_archive(str(dest / "v.zip"), str(dest))
    # The stamp drivestage 0.1.0 wrote: members as [path, size], keyed by name.
    (dest / ".drivestage").mkdir(exist_ok=True)
    (dest / ".drivestage/v.zip.json").write_text(json.dumps({
        "version": 1, "src": "drive:d/v.zip", "id": entry.id, "name": "v.zip",
        "parent_id": entry.parent_id, "md5": entry.md5, "size": entry.size,
        "mtime_ns": (dest / "v.zip").stat().st_mtime_ns, "extracted": True,
        "members": [["ds", -1], ["ds/keep.txt", 4], ["ds/gone.txt", 10]]}))
    (tmp_path / "v2.zip").write_bytes(a_zip(V2))  # a new version on Drive, same id
    assert store.upload(str(tmp_path / "v2.zip"), store.resolve("d"), "v.zip",
                        replace=entry).id == fid
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        result = drivestage.pull("drive:d/v.zip", str(dest), extract=True, quiet=True)
    text = log_text(warnings(caplog, "not removed"))
    shown("of the previous version of … not removed: it was staged by drivestage 0.1.0", text)
    assert "1 member of the previous version of drive:d/v.zip was not removed: it was " \
        "staged by drivestage 0.1.0" in text and "remove it from " in text
    assert result.action == "update"
    assert (dest / "ds/gone.txt").read_bytes() == b"only in v1"  # left for the user
    assert (dest / "ds/new.txt").read_bytes() == b"new in v2"


@renders("was replaced by another file while it downloaded; is another program writing there?")
@pytest.mark.parametrize("extract", [False, True])
def test_a_partial_download_another_program_replaces(emulator, dest, monkeypatch, extract):
    """Someone who can write DEST puts a file of theirs at the partial download's name
    after the download opened it: the download goes on into its own file and verifies it,
    and the rename would bring theirs into place as verified. It is removed again."""
    from drivestage.download import Download

    real_run = Download.run
    theirs = a_zip({"ds/evil.txt": b"not from Drive"})

    def run_after_a_swap(self):
        os.rename(self.partial, self.partial + ".real")  # another program, meanwhile
        write(self.partial, theirs)
        return real_run(self)

    monkeypatch.setattr(Download, "run", run_after_a_swap)
    emulator.add_file("d.zip", a_zip({"ds/a.txt": b"alpha"}))
    code, line = command("pull", "drive:d.zip", str(dest), "-q", *(["-x"] if extract else []))
    assert code == 1
    shown("was replaced by another file while it downloaded; is another program writing "
          "there?", line)
    assert "Nothing was staged: pull again" in line
    assert not (dest / "d.zip").exists() and not (dest / "ds").exists()


@renders("changed on disk while it downloaded (…); is another program writing there?")
@pytest.mark.parametrize("extract", [False, True])
def test_a_partial_download_another_program_truncates(emulator, dest, monkeypatch, extract):
    """Another program truncates the partial after the hash has passed its first MiB; the
    streams' next writes make it long again, with a hole (tests/test_attack17_truncate.py)."""
    from drivestage import streams

    real_write, did = streams.Pass.write, []

    def write(self, piece, offset, data):
        if not piece.urgent and offset >= 1 << 20 and not did:
            with self.lock:
                assert self.lock.wait_for(lambda: self.hashed >= offset, 10)
            os.truncate(self.dl.partial, 0)  # another program, meanwhile
            did.append(offset)
        return real_write(self, piece, offset, data)

    monkeypatch.setattr(streams.Pass, "write", write)
    emulator.add_file("d.tar", a_tar({"ds/a.bin": os.urandom(3 << 20)}))
    code, line = command("pull", "drive:d.tar", str(dest), "-q", "-j", "1",
                         *(["-x"] if extract else []))
    assert code == 1 and did
    shown("changed on disk while it downloaded (…); is another program writing there?", line)
    assert "drive:d.tar" in line and "Nothing was staged: pull again" in line
    assert [p for p in os.listdir(dest) if p != ".drivestage"] == []


@renders("where drivestage keeps its locks and stamps, is a link, a file or another user's "
         "folder")
def test_a_state_folder_that_is_a_link(emulator, dest, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest.mkdir()
    os.symlink(elsewhere, dest / ".drivestage")  # someone who can write DEST
    emulator.add_file("d.zip", a_zip({"ds/a.txt": b"alpha"}))
    code, line = command("pull", "drive:d.zip", str(dest), "-x", "-q")
    assert code == 1
    shown("where drivestage keeps its locks and stamps, is a link, a file or another user's "
          "folder", line)
    assert line == (f"Error: {dest}/.drivestage, where drivestage keeps its locks and stamps, "
                    "is a link, a file or another user's folder; is another program writing "
                    "there? Move it away and run the command again")
    assert not (dest / "ds").exists()
    assert not (elsewhere / "merge.flock").exists()


@renders("temporary folders drivestage made in … kept vanishing or changing before it could "
         "use one")
def test_temp_folders_another_program_keeps_replacing_with_links(emulator, dest, tmp_path,
                                                                 monkeypatch):
    from drivestage.extract import tempdir

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    real_mkdir = os.mkdir

    def mkdir_then_replaced(path, mode=0o777, *args, **kwargs):
        real_mkdir(path, mode, *args, **kwargs)
        if os.path.basename(str(path)).startswith(tempdir.TEMP_PREFIX):
            os.rmdir(path)
            os.symlink(theirs, path)  # another program, right after

    monkeypatch.setattr(tempdir.os, "mkdir", mkdir_then_replaced)
    emulator.add_file("d.zip", a_zip({"ds/a.txt": b"alpha"}))
    code, line = command("pull", "drive:d.zip", str(dest), "-x", "-q")
    assert code == 1
    shown("temporary folders drivestage made in … kept vanishing or changing before it could "
          "use one", line)
    assert os.listdir(theirs) == []
    assert not (dest / "ds").exists()


@renders("changed while … was extracted (another program or pull wrote there)")
def test_a_member_another_program_removes_once_in_place(emulator, dest, monkeypatch):
    from drivestage.extract import job

    real_merge = job.merge

    def merge_then_another_program(archive, tmp, into, tops, **options):
        real_merge(archive, tmp, into, tops, **options)
        os.unlink(os.path.join(into, "ds", "a.txt"))  # another program, right after

    monkeypatch.setattr(job, "merge", merge_then_another_program)
    emulator.add_file("d.zip", a_zip({"ds/a.txt": b"alpha", "ds/b.txt": b"beta"}))
    code, line = command("pull", "drive:d.zip", str(dest), "-x", "-q")
    assert code == 1
    shown("changed while … was extracted (another program or pull wrote there)", line)
    assert f"{dest / 'ds/a.txt'} changed while drive:d.zip was extracted" in line
    monkeypatch.setattr(job, "merge", real_merge)  # the other program is done
    # The stamp does not say "extracted": the next pull extracts again (and downloads nothing).
    emulator.clear_requests()
    result = CliRunner().invoke(cli, ["pull", "drive:d.zip", str(dest), "-x", "-q", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["action"] == "extract"
    assert (dest / "ds/a.txt").read_bytes() == b"alpha"


@renders("is further on (…) than … of the same run; left as it is")
def test_a_push_from_a_machine_behind_leaves_drives_further_on_checkpoint(emulator, store, env,
                                                                          caplog):
    """Drive's last.pt is epoch 5 of the run (saved later); the local one epoch 4: the push
    leaves Drive's checkpoint and sidecar as they are."""
    import hashlib
    import time

    from drivestage.upload_tree import push

    def side(data: bytes, epoch: int, saved: float) -> bytes:
        return json.dumps({"format": 3, "epoch": epoch, "epoch_iteration": 0, "run": "r1",
                           "saved": saved, "md5": hashlib.md5(data).hexdigest(),
                           "size": len(data)}).encode()

    now = time.time()
    theirs, mine = b"epoch five" * 30, b"epoch four" * 20
    emulator.add_file("Models/logs/last.pt", theirs)
    emulator.add_file("Models/logs/last.json", side(theirs, 5, now - 60))
    write(str(env / "logs/last.pt"), mine)
    write(str(env / "logs/last.json"), side(mine, 4, now - 120))
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        result = push(str(env / "logs"), "Models/logs", store=store)
    text = log_text(warnings(caplog, "is further on"))
    shown("is further on (…) than … of the same run; left as it is", text)
    assert "drive:Models/logs/last.pt is further on (epoch 5) than " in text
    assert result.further_on == ["last.pt"] and result.uploaded == []
    assert [f["md5Checksum"] for f in emulator.files() if f["title"] == "last.pt"] == \
        [hashlib.md5(theirs).hexdigest()]
