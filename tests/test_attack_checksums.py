"""Attacks on the checksum a pull verifies with (drivestage.checksums): a server that reports
malformed or lying checksums, preferences that change between a run and its resume, bytes
changed on disk between runs, and the emulator's SHA-1 / SHA-256 however content is stored."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from _cli import run
from _forkcli import PIPE, cli_server

KiB = 1024


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def media_gets(emulator) -> int:
    return sum(1 for r in emulator.requests if r.kind == "media.download")


# --------------------------------------------------------------------------- malformed values

@pytest.mark.parametrize("wanted", ["sha256", "auto"])
@pytest.mark.parametrize("bad", ["zz" * 32, "0" * 63, "0" * 65, " " + "0" * 63, "",
                                 "\t", "0" * 32])
def test_a_sha256_that_is_not_64_hex_digits_is_no_sha256(emulator, drive_env, tmp_path,
                                                         monkeypatch, wanted, bad):
    """Not a SHA-256 at all: the file is verified with its md5, downloaded once."""
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", wanted)
    data = os.urandom(100_000)
    fid = emulator.add_file("x.bin", data)
    emulator.set_checksums(fid, sha256=bad)
    emulator.clear_requests()
    code, out, err = run("pull", "drive:x.bin", str(tmp_path), "-q", "--json")
    assert code == 0, err
    assert json.loads(out)["checksum"] == "md5"
    assert json.loads(out)["md5"] == md5(data)
    assert (tmp_path / "x.bin").read_bytes() == data
    assert media_gets(emulator) == 1


def test_an_upper_case_sha256_is_drives_sha256(emulator, drive_env, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "sha256")
    data = os.urandom(100_000)
    fid = emulator.add_file("x.bin", data)
    emulator.set_checksums(fid, sha256=sha256(data).upper())
    code, out, err = run("pull", "drive:x.bin", str(tmp_path), "-q", "--json")
    assert code == 0, err
    assert json.loads(out)["checksum"] == "sha256"
    emulator.set_checksums(fid, sha256=sha256(b"other").upper())  # and it is compared
    code, out, err = run("pull", "drive:x.bin", str(tmp_path / "b"), "-q")
    assert code == 1 and "(expected sha256 " in err


@pytest.mark.parametrize("bad", ["", "zz" * 16, "0" * 31, "0" * 64])
@pytest.mark.parametrize("sha", [True, False])
def test_an_md5_that_is_not_32_hex_digits_is_malformed_metadata(emulator, drive_env, fast_retries,
                                                                tmp_path,
                                                                monkeypatch, bad, sha):
    """Drive's md5 names the version (stamps, partial files): one that is not an md5 is
    refused before a byte is downloaded (never a download that nothing verified)."""
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "md5")
    data = os.urandom(50_000)
    fid = emulator.add_file("x.bin", data)
    emulator.store.update(fid, md5=bad)
    if not sha:
        emulator.set_checksums(fid, sha256=None)
    emulator.clear_requests()
    code, out, err = run("pull", "drive:x.bin", str(tmp_path / "d"), "-q")
    assert code == 1
    assert err.splitlines()[-1].endswith(
        f": the server answered malformed metadata for item {fid!r} "
        f"(md5Checksum {repr(bad)[:60]}); is --api-root / DRIVESTAGE_API_ROOT a Drive API?")
    assert media_gets(emulator) == 0
    assert not (tmp_path / "d" / "x.bin").exists()


@pytest.mark.parametrize("bad", [123, ["0" * 64], {"sha256": "0" * 64}])
def test_a_sha256_that_is_not_a_string_is_malformed_metadata(emulator, drive_env, tmp_path,
                                                             bad):
    data = os.urandom(1000)
    fid = emulator.add_file("x.bin", data)
    emulator.set_checksums(fid, sha256=bad)
    emulator.clear_requests()
    code, out, err = run("pull", "drive:x.bin", str(tmp_path / "d"), "-q")
    assert code == 1
    assert f"malformed metadata for item {fid!r} (sha256Checksum " in err.splitlines()[-1]
    assert media_gets(emulator) == 0


def test_choose_never_leaves_offered_bytes_unverified(monkeypatch):
    """Any store: values that are no checksum are passed over, but when nothing else is left
    the md5 is still compared (a mismatch, never a download nothing verified)."""
    from dataclasses import replace

    from drivestage import checksums
    from drivestage.store import RemoteEntry

    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "sha256")
    good = RemoteEntry(id="X", name="x", is_dir=False, size=1, md5="A" * 32, sha256="B" * 64)
    assert checksums.choose(good) == checksums.Checksum("sha256", "b" * 64)
    assert checksums.choose(replace(good, sha256="b" * 63)) == checksums.Checksum("md5", "a" * 32)
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "md5")
    assert checksums.choose(replace(good, md5="")) == checksums.Checksum("sha256", "b" * 64)
    assert checksums.choose(replace(good, md5="", sha256=None)) == checksums.Checksum("md5", "")
    assert checksums.choose(replace(good, md5=None, sha256="zz")) == \
        checksums.Checksum("sha256", "zz")
    assert checksums.choose(replace(good, md5=None, sha256=None)) is None


# --------------------------------------------------------------------------- resume

def _half_pulled(emulator, tmp_path, monkeypatch, data: bytes, wanted: str):
    """A pull with ``DRIVESTAGE_CHECKSUM=wanted`` stopped after two of four pieces (Drive's
    download quota ran out): the partial file holds the first half."""
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", wanted)
    fid = emulator.add_file("set.bin", data)
    emulator.limit_downloads(fid, 2)
    code, out, err = run("pull", "drive:set.bin", str(tmp_path), "-q", "-j", "1",
                         "--chunk-size", "256KiB")
    assert code == 1 and "download quota" in err, err
    emulator.limit_downloads(fid, None)
    [partial] = [p for p in os.listdir(tmp_path) if p.endswith(".partial")]
    assert os.path.getsize(tmp_path / partial) >= 512 * KiB
    return tmp_path / partial


@pytest.mark.parametrize("before,after", [("md5", "sha256"), ("sha256", "md5"),
                                          ("auto", "sha256"), ("sha256", "auto")])
def test_a_resume_with_another_checksum_hashes_the_resumed_half_from_disk(
        emulator, drive_env, tmp_path, monkeypatch, before, after):
    data = os.urandom(1024 * KiB)
    _half_pulled(emulator, tmp_path, monkeypatch, data, before)
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", after)
    code, out, err = run("pull", "drive:set.bin", str(tmp_path), "-q", "--json", "-j", "1",
                         "--chunk-size", "256KiB")
    assert code == 0, err
    got = json.loads(out)
    assert (got["action"], got["resumed_from"], got["fetched"]) == ("resume", 512 * KiB,
                                                                   512 * KiB)
    if after != "auto":
        assert got["checksum"] == after
    assert (tmp_path / "set.bin").read_bytes() == data


@pytest.mark.slow
def test_sigkill_with_md5_then_a_resume_with_sha256_over_a_partial_with_gaps(emulator, drive_env,
                                                                            tmp_path):
    """Two streams leave gaps; the SHA-256 of the resume covers what the killed md5 run
    wrote, read back from disk, and only the ranges its record lacks are asked again."""
    from tests._kill import sigkill_when

    import drivestage
    from drivestage import download as dl

    chunk = 64 * KiB
    data = os.urandom(40 * chunk)
    emulator.add_file("x.bin", data)
    entry = drivestage.connect().resolve("x.bin")
    target = str(tmp_path / "x.bin")
    env = dict(os.environ, DRIVESTAGE_API_ROOT=emulator.url, DRIVESTAGE_TOKEN="test-token",
               DRIVESTAGE_CHECKSUM="md5")
    # (forked with drivestage imported, tests/_forkcli.py: not a fresh interpreter each)
    cmd = ["pull", "drive:x.bin", str(tmp_path), "-q",
           "--chunk-size", str(chunk), "-j", "2"]
    emulator.faults.throttle(512 * KiB)  # the kill lands mid-download on any machine
    proc = cli_server().popen(cmd, env=env, stdout=PIPE, stderr=PIPE)
    sigkill_when(proc, lambda: dl.partial_size(target, entry) >= 4 * chunk)
    have = dl.partial_size(target, entry)
    emulator.faults.throttle(None)
    rerun = cli_server().run(cmd + ["--json"], env=dict(env, DRIVESTAGE_CHECKSUM="sha256"),
                             text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    got = json.loads(rerun.stdout)
    assert (got["action"], got["checksum"], got["resumed_from"], got["fetched"]) == \
        ("resume", "sha256", have, len(data) - have)
    assert (tmp_path / "x.bin").read_bytes() == data


@pytest.mark.parametrize("after", ["md5", "sha256"])
def test_a_partial_changed_on_disk_between_runs_is_caught_by_either_checksum(
        emulator, drive_env, tmp_path, monkeypatch, after):
    data = os.urandom(1024 * KiB)
    partial = _half_pulled(emulator, tmp_path, monkeypatch, data, "md5")
    with open(partial, "r+b") as fh:  # a byte of the resumed half, changed on disk
        fh.seek(1000)
        fh.write(bytes([data[1000] ^ 0xFF]))
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", after)
    code, out, err = run("pull", "drive:set.bin", str(tmp_path), "--json", "-j", "1",
                         "--chunk-size", "256KiB")
    assert code == 0, err
    assert f"checksum mismatch (expected {after} " in err
    got = json.loads(out)
    assert (got["checksum"], got["resumed_from"], got["fetched"]) == \
        (after, 0, 512 * KiB + 1024 * KiB)  # the rest, then everything again
    assert (tmp_path / "set.bin").read_bytes() == data
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == [".drivestage"]


# --------------------------------------------------------------------------- lying checksums

def test_md5_lies_and_sha256_is_right_each_preference_decides_the_same_way(
        emulator, drive_env, tmp_path, monkeypatch):
    """Drive's md5 names the version in the stamp whichever checksum verified it: a rerun
    hashes nothing under any preference; --force or a copy without a stamp is checked again
    with the chosen checksum, and a failure leaves the good copy where it was."""
    data = os.urandom(300_000)
    fid = emulator.add_file("x.bin", data)
    emulator.store.update(fid, md5="0" * 32)

    def pull(wanted, *extra):
        monkeypatch.setenv("DRIVESTAGE_CHECKSUM", wanted)
        emulator.clear_requests()
        code, out, err = run("pull", "drive:x.bin", str(tmp_path), "-q", "--json", *extra)
        assert (tmp_path / "x.bin").read_bytes() == data  # never lost
        got = json.loads(out) if code == 0 else {}
        return code, got.get("action"), got.get("checksum"), got.get("md5"), media_gets(emulator)

    assert pull("sha256") == (0, "download", "sha256", "0" * 32, 1)
    for wanted in ("sha256", "md5", "auto"):
        assert pull(wanted) == (0, "cached", "", "0" * 32, 0)
    assert pull("md5", "--force")[::4] == (1, 2)  # two tries, then the error
    assert pull("sha256", "--force") == (0, "download", "sha256", "0" * 32, 1)
    import shutil
    shutil.rmtree(tmp_path / ".drivestage")  # a copy no stamp vouches for
    # Its md5 is not Drive's: taken for a file of the user's, never replaced (no download).
    assert pull("md5")[::4] == (1, 0)
    assert pull("sha256") == (0, "verified", "sha256", "0" * 32, 0)


@pytest.mark.parametrize("wanted", ["md5", "sha256"])
def test_a_file_shortcut_is_verified_with_its_targets_checksums(emulator, drive_env, tmp_path,
                                                                monkeypatch, wanted):
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", wanted)
    data = os.urandom(100_000)
    target = emulator.add_file("real/x.bin", data)
    emulator.add_shortcut("link.bin", target)
    code, out, err = run("pull", "drive:link.bin", str(tmp_path / "a"), "-q", "--json")
    assert code == 0, err
    assert (json.loads(out)["checksum"], json.loads(out)["md5"]) == (wanted, md5(data))
    emulator.set_checksums(target, sha256=sha256(b"not these"))
    code, out, err = run("pull", "drive:link.bin", str(tmp_path / "b"), "-q", "--json")
    assert code == (1 if wanted == "sha256" else 0)
    if wanted == "sha256":
        assert f"(expected sha256 {sha256(b'not these')}, 100000 bytes; got sha256 " \
               f"{sha256(data)}, 100000 bytes), twice" in err


def test_a_folder_pull_verifies_each_file_with_what_it_has(emulator, drive_env, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "sha256")
    files = {f"VOC/{n}.bin": os.urandom(20_000 + n) for n in range(4)}
    ids = {path: emulator.add_file(path, data) for path, data in files.items()}
    emulator.set_checksums(ids["VOC/1.bin"], sha1=None, sha256=None)  # an old file
    emulator.set_checksums(ids["VOC/2.bin"], sha256="not a sha256")
    code, out, err = run("pull", "drive:VOC", str(tmp_path), "-q", "--json")
    assert code == 0, err
    got = {f["name"]: (f["checksum"], f["md5"]) for f in json.loads(out)["files"]}
    assert got == {"0.bin": ("sha256", md5(files["VOC/0.bin"])),
                   "1.bin": ("md5", md5(files["VOC/1.bin"])),
                   "2.bin": ("md5", md5(files["VOC/2.bin"])),
                   "3.bin": ("sha256", md5(files["VOC/3.bin"]))}
    for path, data in files.items():
        assert (tmp_path / path).read_bytes() == data
    emulator.set_checksums(ids["VOC/3.bin"], sha256=sha256(b"lies"))
    code, out, err = run("pull", "drive:VOC", str(tmp_path / "again"), "-q", "--json")
    assert code == 1 and "3.bin: the downloaded bytes do not match Drive (expected sha256 " \
        in err


@pytest.mark.parametrize("wanted", ["md5", "sha256", "auto"])
def test_a_local_folder_has_no_sha256_its_md5_verifies(tmp_path, monkeypatch, wanted):
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", wanted)
    mount = tmp_path / "MyDrive"
    mount.mkdir()
    data = os.urandom(50_000)
    (mount / "x.bin").write_bytes(data)
    code, out, err = run("pull", str(mount / "x.bin"), str(tmp_path / "d"), "-q", "--json")
    assert code == 0, err
    assert (json.loads(out)["checksum"], json.loads(out)["md5"]) == ("md5", md5(data))
    assert (tmp_path / "d" / "x.bin").read_bytes() == data


# --------------------------------------------------------------------------- extraction

def _archive(kind: str, members: dict) -> bytes:
    from tests._archives import a_tgz, a_zip
    return a_zip(members) if kind == "zip" else a_tgz(members)


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_an_extraction_that_follows_the_download_is_verified_with_sha256(
        emulator, drive_env, tmp_path, monkeypatch, kind):
    """A mismatch once: the extraction that followed the first pass is abandoned and the
    archive's second pass extracted; a lying SHA-256 leaves DEST without a member."""
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "sha256")
    members = {f"d/{n}.bin": os.urandom(300 * KiB) for n in range(4)}
    blob = _archive(kind, members)
    fid = emulator.add_file(f"set.{kind}", blob)
    emulator.faults.corrupt(fid, times=1)
    dest = tmp_path / "a"
    code, out, err = run("pull", f"drive:set.{kind}", str(dest), "-x", "--json", "-j", "1",
                         "--chunk-size", "256KiB")
    assert code == 0, err
    assert "checksum mismatch (expected sha256 " in err
    got = json.loads(out)
    assert (got["checksum"], got["extracted"], got["members"]) == ("sha256", True, 4)
    for name, data in members.items():
        assert (dest / name).read_bytes() == data
    emulator.set_checksums(fid, sha256=sha256(b"lies"))
    dest = tmp_path / "b"
    code, out, err = run("pull", f"drive:set.{kind}", str(dest), "-x", "-q", "-j", "1",
                         "--chunk-size", "256KiB")
    assert code == 1 and "(expected sha256 " in err
    assert sorted(os.listdir(dest)) == [".drivestage"]


# --------------------------------------------------------------------------- the emulator

def _sums(data: bytes) -> tuple:
    return md5(data), hashlib.sha1(data).hexdigest(), sha256(data)


def _reported(res: dict) -> tuple:
    return res.get("md5Checksum"), res.get("sha1Checksum"), res.get("sha256Checksum")


def test_the_emulators_checksums_survive_a_restart_and_a_resumed_upload(tmp_path):
    """A resumable upload resumed by a restarted emulator, a corrupted upload, and the
    records an emulator restarted on the same data folder reads back."""
    from drivestage.emulator import Emulator
    from tests.test_emulator_api import KIB256, jreq, req, start_session

    data = os.urandom(KIB256 + 77)
    with Emulator(data_dir=str(tmp_path)) as emu:
        loc = start_session(emu, len(data))
        assert req(emu, "PUT", loc, data[:KIB256],
                   headers={"Content-Range": f"bytes 0-{KIB256 - 1}/{len(data)}"})[0] == 308
        port = emu.port
        seeded = emu.add_file("seeded.bin", b"seeded")
        old = emu.add_file("old.bin", b"from 2012")
        emu.set_checksums(old, sha1=None, sha256=None)
    with Emulator(data_dir=str(tmp_path), port=port) as emu:
        status, _, f = jreq(emu, "PUT", loc, data[KIB256:],
                            headers={"Content-Range": f"bytes {KIB256}-{len(data) - 1}/"
                                                      f"{len(data)}"})
        assert status == 200 and _reported(f) == _sums(data)
        emu.faults.corrupt_upload()
        status, _, g = jreq(emu, "POST", "/upload/drive/v2/files?uploadType=media", b"sent")
        assert status == 200 and _reported(g) == _sums(b"\x8cent")  # what Drive stored
        assert emu.read_bytes(g["id"]) == b"\x8cent"
    with Emulator(data_dir=str(tmp_path), port=port) as emu:
        got = {f["title"]: _reported(f) for f in emu.files()}
        assert got == {"up.bin": _sums(data), "Untitled": _sums(b"\x8cent"),
                       "seeded.bin": _sums(b"seeded"),
                       "old.bin": (md5(b"from 2012"), None, None)}
        assert emu.find("seeded.bin")["id"] == seeded


def test_the_control_api_seeds_files_with_checksums_and_sets_them(emulator):
    from tests.test_emulator_api import jreq

    status, _, f = jreq(emulator, "POST", "/_emulator/files?path=VOC/set.zip", b"zip bytes",
                        headers={"Content-Type": "application/zip"})
    assert status == 200 and _reported(f) == _sums(b"zip bytes")
    status, _, got = jreq(emulator, "POST", "/_emulator/set_checksums",
                          {"file_id": f["id"], "sha1": None, "sha256": "0" * 64})
    assert (status, got) == (200, {"result": None})
    status, _, g = jreq(emulator, "GET", f"/drive/v2/files/{f['id']}")
    assert _reported(g) == (md5(b"zip bytes"), None, "0" * 64)
    status, _, err = jreq(emulator, "POST", "/_emulator/set_checksums",
                          {"file_id": f["id"], "crc32c": "0" * 8})
    assert status == 400 and "unknown checksums ['crc32c']" in err["error"]["message"]
    # md5 too (fidelity28): null leaves md5Checksum out, as for files stored long ago.
    status, _, _ = jreq(emulator, "POST", "/_emulator/set_checksums",
                        {"file_id": f["id"], "md5": None})
    assert status == 200
    status, _, g = jreq(emulator, "GET", f"/drive/v2/files/{f['id']}")
    assert "md5Checksum" not in g and _reported(g) == (None, None, "0" * 64)


def test_set_checksums_refuses_an_item_without_content(emulator):
    """A folder or a shortcut has no checksums on Drive: setting one is a mistake in the test
    (it would change nothing a client sees), said at once."""
    folder = emulator.add_folder("d")
    target = emulator.add_file("d/x.bin", b"x")
    link = emulator.add_shortcut("link", target)
    for item in (folder, link):
        with pytest.raises(ValueError, match=f"{item} has no content, so no checksums"):
            emulator.set_checksums(item, sha256="0" * 64)
    emulator.set_checksums(target, sha256="0" * 64)
    assert emulator.store.get(target)["sha256"] == "0" * 64
