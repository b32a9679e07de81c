"""`drivestage pull` end to end: the CLI (in-process) and the Python API, the real Drive
stack against the emulator, faults injected on the wire."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import threading
import zipfile

import pytest

import drivestage
from drivestage import errors
from drivestage.drive import retry
from _cli import run, summed
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

CHUNK = 64 * 1024


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "data"


def logged(emu, keep):
    """Records of the emulator's log that ``keep`` accepts (a request is logged as it arrives,
    so the log is whole when the client has its answer)."""
    return [r for r in emu.requests if keep(r)]


def media(emu, fid=None):
    """Media GETs (of ``fid``) in the emulator's log."""
    return logged(emu, lambda r: r.method == "GET" and r.query.get("alt") == "media"
                  and (fid is None or r.path.endswith(fid)))


def make_zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def voc_zip() -> tuple[bytes, dict]:
    members = {f"VOCdevkit/VOC2007/JPEGImages/{i:06d}.jpg": os.urandom(3000 + i)
               for i in range(20)}
    members.update({f"VOCdevkit/VOC2007/Annotations/{i:06d}.xml": f"<a>{i}</a>".encode()
                    for i in range(20)})
    return make_zip(members), members


# --------------------------------------------------------------------------- basics

@pytest.mark.parametrize("size", [0, 1, CHUNK + 17, 4 * CHUNK + 3])
def test_pull_sizes_cli(emulator, drive_env, dest, size):
    data = os.urandom(size)
    emulator.add_file("sets/f.bin", data)
    code, out, err = run("pull", "drive:sets/f.bin", str(dest), "--chunk-size", str(CHUNK),
                         "-j", "3")
    assert code == 0, err
    assert out.strip() == str(dest / "f.bin")
    assert (dest / "f.bin").read_bytes() == data
    assert summed(data) in err   # the checksum that verified it, named
    assert sorted(os.listdir(dest)) == [".drivestage", "f.bin"]


def test_json_summary_and_python_api(emulator, drive_env, dest):
    data = os.urandom(1000)
    fid = emulator.add_file("a/b.bin", data)
    code, out, err = run("pull", "drive:a/b.bin", str(dest), "--json", "-q")
    assert code == 0 and err == ""
    summary = json.loads(out)
    assert summary["id"] == fid and summary["size"] == 1000 and summary["action"] == "download"
    assert summary["md5"] == hashlib.md5(data).hexdigest() and summary["fetched"] == 1000
    res = drivestage.pull(f"drive:id:{fid}", str(dest), quiet=True)
    assert res.action == "cached" and res.path == str(dest / "b.bin")


def test_rerun_on_an_intact_copy_is_one_metadata_call(emulator, drive_env, dest):
    emulator.add_file("deep/er/still/x.bin", os.urandom(5000))
    assert run("pull", "drive:deep/er/still/x.bin", str(dest))[0] == 0
    emulator.clear_requests()
    code, out, err = run("pull", "drive:deep/er/still/x.bin", str(dest))
    assert code == 0 and "already staged" in err
    api = logged(emulator, lambda r: r.path.startswith("/drive/"))
    assert len(api) == 1 and api[0].method == "GET" and api[0].query.get("alt") == "json"
    assert api[0].path.startswith("/drive/v2/files/")  # files.get by the stamped id
    assert media(emulator) == []
    # --force stages again.
    emulator.clear_requests()
    code, out, err = run("pull", "drive:deep/er/still/x.bin", str(dest), "--force", "--json")
    assert code == 0 and json.loads(out)["action"] == "download"
    assert len(media(emulator)) == 1


def test_json_reports_the_api_calls_the_command_made(emulator, drive_env, dest):
    emulator.add_file("n/x.zip", make_zip({"a.txt": b"a" * 5000}))
    emulator.add_folder("n/F")
    emulator.add_file("n/F/y.bin", b"y")
    emulator.clear_requests()
    code, out, err = run("pull", "drive:n/x.zip", str(dest), "-x", "--json")
    assert code == 0, err
    sent = logged(emulator, lambda r: r.path.startswith(("/drive/", "/upload/")))
    assert json.loads(out)["api_calls"] == len(sent) >= 2
    emulator.clear_requests()
    code, out, err = run("pull", "drive:n/x.zip", str(dest), "-x", "--json")
    assert json.loads(out)["api_calls"] == 1 == len(emulator.requests)
    emulator.clear_requests()
    code, out, err = run("pull", "drive:n/F", str(dest), "--json")
    assert code == 0, err
    assert json.loads(out)["api_calls"] == len(emulator.requests)


def test_a_changed_remote_file_is_staged_again(emulator, drive_env, dest):
    emulator.add_file("c/x.bin", b"version 1")
    assert run("pull", "drive:c/x.bin", str(dest))[0] == 0
    store = drivestage.connect()
    store.delete(store.resolve("c/x.bin"))
    emulator.add_file("c/x.bin", b"version 2!")
    code, out, err = run("pull", "drive:c/x.bin", str(dest), "--json")
    assert code == 0 and json.loads(out)["action"] == "update"
    assert (dest / "x.bin").read_bytes() == b"version 2!"


def test_an_existing_matching_file_is_adopted_without_download(emulator, drive_env, dest):
    data = os.urandom(3000)
    emulator.add_file("y.bin", data)
    dest.mkdir()
    (dest / "y.bin").write_bytes(data)
    emulator.clear_requests()
    code, out, err = run("pull", "drive:y.bin", str(dest), "--json")
    assert code == 0 and json.loads(out)["action"] == "verified"
    assert media(emulator) == []


# --------------------------------------------------------------------------- faults

FAULTS = {
    "429": dict(status=429, reason="rateLimitExceeded"),
    "500": dict(status=500),
    "502-html": dict(status=502, body="<!DOCTYPE html><html><b>502.</b> That's an error.</html>",
                     content_type="text/html; charset=UTF-8"),
    "503-retry-after": dict(status=503, retry_after=1),
    "403-rate": dict(status=403, reason="rateLimitExceeded", message="Rate Limit Exceeded"),
}


@pytest.mark.parametrize("fault", [*FAULTS, "reset-mid-body"])
def test_retryable_faults_heal(emulator, drive_env, dest, monkeypatch, fault):
    sleeps: list[float] = []
    monkeypatch.setattr(retry, "_sleep", sleeps.append)
    data = os.urandom(3 * CHUNK + 5)
    fid = emulator.add_file("f/x.bin", data)
    if fault == "reset-mid-body":
        # A drop rule is used up by the next matching request whether or not its answer
        # reaches ``after_bytes``: after 1000 bytes, every request but the file's 5-byte
        # tail is long enough (the tail is asked for only after both drops are used up), so
        # both drops happen, on one chunk twice or on two chunks (streams race).
        emulator.faults.drop("GET", r"alt=media", after_bytes=1000, times=2)
    else:
        emulator.faults.inject("GET", r"alt=media", times=2, **FAULTS[fault])
    code, out, err = run("pull", "drive:f/x.bin", str(dest), "--chunk-size", str(CHUNK),
                         "-j", "2", "-q")
    assert code == 0, err
    assert (dest / "x.bin").read_bytes() == data
    warnings = [line for line in err.splitlines() if line.startswith("WARNING drivestage.drive.retry")]
    # Two failures: one chunk failing twice, or two chunks once each (threads race).
    assert len(warnings) == 2 and all("/7 in " in w for w in warnings), err
    assert all(w.split(": ", 1)[1].startswith("download drive:f/x.bin bytes ") for w in warnings)
    if fault == "503-retry-after":
        assert sleeps == [1.0, 1.0] and "server asked for 1s" in warnings[0]
    assert len(media(emulator, fid)) >= 6


@pytest.mark.parametrize("status,reason,cls,needle", [
    (404, "notFound", errors.NotFoundError, "not found"),
    (403, "insufficientFilePermissions", errors.PermissionDeniedError, "permission denied"),
    (403, "downloadQuotaExceeded", errors.DownloadQuotaError, "refuses to serve"),
    (401, "authError", errors.AuthError, "refused the credentials"),
])
def test_permanent_faults_exit_1_and_leave_nothing(emulator, drive_env, dest, status, reason,
                                                    cls, needle):
    emulator.add_file("f/x.bin", os.urandom(100))
    emulator.faults.inject("GET", r"alt=media", status=status, reason=reason, times=None)
    code, out, err = run("pull", "drive:f/x.bin", str(dest), "-q")
    assert code == 1 and out == ""
    assert err.startswith("Error: download drive:f/x.bin") and err.count("\n") == 1
    assert needle in err
    assert not (dest / "x.bin").exists()
    with pytest.raises(cls):
        drivestage.pull("drive:f/x.bin", str(dest), quiet=True)


@pytest.mark.parametrize("checksum", ["md5", "sha256"])
def test_corrupted_bytes_checksum_error_and_no_file(emulator, drive_env, dest, monkeypatch,
                                                    checksum):
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", checksum)
    data = os.urandom(2 * CHUNK)
    fid = emulator.add_file("bad.bin", data)
    emulator.faults.corrupt(fid)
    code, out, err = run("pull", "drive:bad.bin", str(dest), "--chunk-size", str(CHUNK))
    assert code == 1
    assert "do not match Drive" in err
    assert f"(expected {checksum} {hashlib.new(checksum, data).hexdigest()}, " in err
    assert [p for p in os.listdir(dest) if p != ".drivestage"] == []


def test_usage_errors_exit_2(emulator, drive_env, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert run("pull", "drive:id:", str(tmp_path / "d"))[0] == 2
    code, out, err = run("pull", "drive:x.bin", str(afile))
    assert code == 2
    assert run("pull", "drive:x.bin", str(tmp_path / "d"), "-j", "0")[0] == 2
    assert run("pull", "drive:x.bin", str(tmp_path / "d"), "--reserve", "lots")[0] == 2
    emulator.add_folder("folder")  # an empty folder is no usage error: it is pulled, empty
    code, out, err = run("pull", "drive:folder", str(tmp_path / "d"))
    assert code == 0 and out == f"{tmp_path / 'd' / 'folder'}\n"


def test_duplicate_names_exit_1_naming_ids(emulator, drive_env, dest):
    a = emulator.add_file("dup/x.bin", b"1")
    b = emulator.add_file("dup/x.bin", b"2")
    code, out, err = run("pull", "drive:dup/x.bin", str(dest))
    assert code == 1 and a in err and b in err and "drive:id:" in err
    code, out, err = run("pull", f"drive:id:{b}", str(dest))
    assert code == 0 and (dest / "x.bin").read_bytes() == b"2"


def test_wrong_token_exit_1_and_the_token_is_never_printed(emulator_factory, tmp_path, monkeypatch):
    emu = emulator_factory(token="the-right-one")
    emu.add_file("x.bin", b"x")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emu.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "sekrit-wrong-token")
    code, out, err = run("-vv", "pull", "drive:x.bin", str(tmp_path / "out"))
    assert code == 1 and "401" in err and "DRIVESTAGE_TOKEN" in err
    assert "sekrit-wrong-token" not in out + err
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "the-right-one")
    code, out, err = run("-vv", "pull", "drive:x.bin", str(tmp_path / "out"))
    assert code == 0 and "the-right-one" not in out + err


def test_disk_space_is_checked_before_downloading(emulator, drive_env, dest):
    emulator.add_file("big.bin", os.urandom(1000))
    # Ask to keep more than the disk has free (other processes share this disk, so leave a
    # wide margin rather than racing their writes).
    free = shutil.disk_usage(dest.parent).free + 2**30
    emulator.clear_requests()
    code, out, err = run("pull", "drive:big.bin", str(dest), "--reserve", str(free))
    assert code == 1
    assert "not enough free disk space" in err and "needs 1000 B (1000 bytes)" in err
    assert "only 0 B (0 bytes) free (keeping" in err
    assert media(emulator) == []
    with pytest.raises(errors.DiskSpaceError) as info:
        drivestage.pull("drive:big.bin", str(dest), quiet=True, reserve=free)
    assert info.value.needed == 1000


# --------------------------------------------------------------------------- extraction

def test_extract_and_rerun_does_nothing(emulator, drive_env, dest):
    blob, members = voc_zip()
    emulator.add_file("VOC_datasets/VOC07.zip", blob)
    code, out, err = run("pull", "drive:VOC_datasets/VOC07.zip", str(dest), "--extract",
                         "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["extracted"] and summary["members"] == len(members)
    for name, data in members.items():
        assert (dest / name).read_bytes() == data
    assert not [p for p in os.listdir(dest) if p.startswith(".drivestage-extract")]
    emulator.clear_requests()
    code, out, err = run("pull", "drive:VOC_datasets/VOC07.zip", str(dest), "--extract",
                         "--json")
    assert code == 0 and json.loads(out)["action"] == "cached"
    assert media(emulator) == []
    # A member deleted locally: only the extraction runs again.
    os.unlink(dest / "VOCdevkit/VOC2007/Annotations/000003.xml")
    code, out, err = run("pull", "drive:VOC_datasets/VOC07.zip", str(dest), "-x", "--json")
    assert code == 0 and json.loads(out)["action"] == "extract"
    assert (dest / "VOCdevkit/VOC2007/Annotations/000003.xml").read_bytes() == b"<a>3</a>"
    assert media(emulator) == []


def test_extract_tar_gz(emulator, drive_env, dest):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in {"ds/a.txt": b"alpha", "ds/sub/b.txt": b"beta" * 100}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    emulator.add_file("ds.tgz", buf.getvalue())
    res = drivestage.pull("drive:ds.tgz", str(dest), extract=True, quiet=True)
    assert res.extracted and (dest / "ds/sub/b.txt").read_bytes() == b"beta" * 100


def _symlink_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("ds/escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../../../etc"
        tf.addfile(link)
        info = tarfile.TarInfo("ds/escape/passwd")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"own"))
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["zip-slip", "absolute", "symlink"])
def test_unsafe_archives_are_refused_end_to_end(emulator, drive_env, tmp_path, kind):
    dest = tmp_path / "deep" / "data"
    if kind == "zip-slip":
        blob, name = make_zip({"ok.txt": b"fine", "../../evil.txt": b"owned"}), "a.zip"
    elif kind == "absolute":
        blob, name = make_zip({"ok.txt": b"fine", str(tmp_path / "abs.txt"): b"owned"}), "a.zip"
    else:
        blob, name = _symlink_tar(), "a.tar"
    emulator.add_file(name, blob)
    code, out, err = run("pull", f"drive:{name}", str(dest), "--extract")
    assert code == 1 and "Error:" in err
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "abs.txt").exists()
    assert not (dest / "ok.txt").exists()  # nothing extracted at all
    # The verified download itself stays (and is not fetched again next time).
    assert (dest / name).read_bytes() == blob


def test_truncated_archive_is_a_clear_error(emulator, drive_env, dest):
    blob, _ = voc_zip()
    emulator.add_file("cut.zip", blob[: len(blob) // 2])
    code, out, err = run("pull", "drive:cut.zip", str(dest), "--extract")
    assert code == 1 and "cut.zip" in err
    assert not (dest / "VOCdevkit").exists()


def test_extract_of_a_non_archive(emulator, drive_env, dest):
    emulator.add_file("notes.txt", b"just text")
    code, out, err = run("pull", "drive:notes.txt", str(dest), "--extract")
    assert code == 1 and "not a zip or tar archive" in err


# --------------------------------------------------------------------------- concurrency

def test_concurrent_pulls_download_once(emulator, drive_env, dest):
    data = os.urandom(6 * CHUNK)
    fid = emulator.add_file("shared.bin", data)
    emulator.faults.latency(0.02, method="GET", path=r"alt=media")
    results, failures = [], []

    def one():
        try:
            results.append(drivestage.pull("drive:shared.bin", str(dest), quiet=True,
                                           chunk_size=CHUNK))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(r.action for r in results) == ["cached", "cached", "download"]
    assert (dest / "shared.bin").read_bytes() == data
    served = sum(r.bytes_out for r in media(emulator, fid))
    assert served == len(data)


# --------------------------------------------------------------------------- odds and ends

def test_retries_option_bounds_the_attempts(emulator, drive_env, dest):
    emulator.add_file("r.bin", b"x" * 10)
    emulator.faults.inject("GET", r"alt=media", status=503, times=None)
    code, out, err = run("pull", "drive:r.bin", str(dest), "--retries", "3", "-q")
    assert code == 1 and "still failing after 3 attempts (503 backendError" in err
    assert len([line for line in err.splitlines() if "retry " in line]) == 2
    assert not (dest / "r.bin").exists()


def test_google_docs_have_no_bytes_to_pull(emulator, drive_env, dest):
    emulator.add_file("notes", b"", mime_type="application/vnd.google-apps.document")
    code, out, err = run("pull", "drive:notes", str(dest))
    assert code == 2 and "no binary content" in err


def test_the_verb_is_logged_and_a_cache_hit_logs_nothing(emulator, drive_env, dest, caplog):
    emulator.add_file("v.bin", b"v" * 100)
    with caplog.at_level(logging.INFO, logger="drivestage"):
        drivestage.pull("drive:v.bin", str(dest), quiet=True)
    assert any(r.getMessage().startswith("download drive:v.bin") for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="drivestage"):
        assert drivestage.pull("drive:v.bin", str(dest), quiet=True).action == "cached"
    ours = [r.getMessage() for r in caplog.records
            if r.name.startswith("drivestage") and not r.name.startswith("drivestage.emulator")]
    assert ours == []


def test_pull_from_a_local_folder_such_as_a_drive_mount(tmp_path, dest):
    mount = tmp_path / "MyDrive" / "VOC_datasets"
    mount.mkdir(parents=True)
    blob, members = voc_zip()
    (mount / "VOC07.zip").write_bytes(blob)
    code, out, err = run("pull", str(mount / "VOC07.zip"), str(dest), "-x", "--json", "-q")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["md5"] == hashlib.md5(blob).hexdigest() and summary["extracted"]
    assert (dest / "VOCdevkit/VOC2007/Annotations/000007.xml").read_bytes() == b"<a>7</a>"
    code, out, err = run("pull", str(mount / "VOC07.zip"), str(dest), "-x", "--json", "-q")
    assert code == 0 and json.loads(out)["action"] == "cached"


def test_local_trouble_is_one_clear_line(emulator, drive_env, dest):
    emulator.add_file("x.bin", b"x")
    (dest / "x.bin").mkdir(parents=True)
    code, out, err = run("pull", "drive:x.bin", str(dest))
    # DEST's state, not the command line: 1, as the other conflicts with what DEST holds.
    assert code == 1 and "is a folder" in err and err.count("\n") == 1, err


def test_unwritable_dest_is_one_clear_line(emulator, drive_env, dest):
    emulator.add_file("x.bin", b"x")
    locked = dest.parent / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions
            pytest.skip("running as root: permissions are not enforced")
        code, out, err = run("pull", "drive:x.bin", str(locked / "sub"))
        assert code == 1 and err.startswith("Error: cannot stage drive:x.bin")
    finally:
        os.chmod(locked, 0o700)


def test_two_archives_share_a_folder_and_an_update_drops_only_its_own_stale_members(
        emulator, drive_env, dest):
    def zipped(members: dict) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return buf.getvalue()

    emulator.add_file("v/VOC2007.zip", zipped({"VOCdevkit/VOC2007/a.xml": b"a",
                                               "VOCdevkit/VOC2007/gone.xml": b"old"}))
    emulator.add_file("v/VOC2012.zip", zipped({"VOCdevkit/VOC2012/b.xml": b"b"}))
    assert run("pull", "drive:v/VOC2007.zip", str(dest), "-x", "-q")[0] == 0
    assert run("pull", "drive:v/VOC2012.zip", str(dest), "-x", "-q")[0] == 0
    assert (dest / "VOCdevkit/VOC2007/a.xml").read_bytes() == b"a"  # not erased by 2012's
    assert (dest / "VOCdevkit/VOC2012/b.xml").read_bytes() == b"b"
    store = drivestage.connect()
    store.delete(store.resolve("v/VOC2007.zip"))
    emulator.add_file("v/VOC2007.zip", zipped({"VOCdevkit/VOC2007/a.xml": b"a2"}))
    code, out, err = run("pull", "drive:v/VOC2007.zip", str(dest), "-x", "--json")
    assert code == 0 and json.loads(out)["action"] == "update"
    assert (dest / "VOCdevkit/VOC2007/a.xml").read_bytes() == b"a2"
    assert not (dest / "VOCdevkit/VOC2007/gone.xml").exists()
    assert (dest / "VOCdevkit/VOC2012/b.xml").read_bytes() == b"b"


@pytest.mark.parametrize("suffix", [".bin", ".zip"])
def test_a_name_of_255_bytes_is_pulled_and_its_partial_lock_and_stamp_fit(emulator, drive_env,
                                                                         dest, suffix):
    # The file system allows 255 bytes; drivestage's own files for it (the partial download,
    # its range record and that record's temporary file, the lock, the stamp) add up to 40
    # bytes to the name: they must not make a name that fits fail ("File name too long").
    name = "é" * ((255 - len(suffix)) // 2) + "x" * ((255 - len(suffix)) % 2) + suffix
    assert len(name.encode()) == 255
    if suffix == ".zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("ds/a.txt", b"member bytes")
        data = buf.getvalue()
    else:
        data = os.urandom(3 * CHUNK + 5)
    emulator.add_file(f"d/{name}", data)
    extra = ["-x"] if suffix == ".zip" else []
    code, out, err = run("pull", f"drive:d/{name}", str(dest), "-q", *extra)
    assert code == 0, err
    assert (dest / name).read_bytes() == data
    assert sorted(p for p in os.listdir(dest) if p != ".drivestage") == \
        sorted([name] + (["ds"] if extra else []))
    if extra:
        assert (dest / "ds" / "a.txt").read_bytes() == b"member bytes"
    emulator.clear_requests()
    code, out, err = run("pull", f"drive:d/{name}", str(dest), "--json", *extra)
    assert code == 0, err
    assert json.loads(out)["action"] == "cached" and media(emulator) == []


def test_a_title_that_is_another_long_names_hash_shares_none_of_its_files(tmp_path):
    # A hostile (or unlucky) Drive title "long-<sha1 of a long name>" beside that long name:
    # a pull of one must not take the other's partial download for an older version of its
    # own and delete it.
    from drivestage.partials import partial_path, stale_partials
    from drivestage.store import RemoteEntry

    long_name = "v" * 240 + ".zip"
    twin = "long-" + hashlib.sha1(long_name.encode()).hexdigest()
    a = partial_path(str(tmp_path / long_name), RemoteEntry(id="A", name=long_name, is_dir=False,
                                                            size=1, md5="0" * 32))
    open(a, "wb").close()
    assert stale_partials(str(tmp_path / twin)) == []         # not the twin's to remove
    assert stale_partials(str(tmp_path / long_name)) == [a]   # its own file's, as before
    assert stale_partials(str(tmp_path / long_name), keep=a) == []
