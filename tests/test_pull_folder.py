"""`drivestage pull` of a whole folder: the tree, archives extracted in place, incremental
reruns, and the early failures (duplicates, disk space), against the emulator."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

import drivestage
from drivestage.stage_tree import FolderPullResult

from _archives import a_zip, tree
from _cli import run
from _forkcli import cli_server
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

MiB = 1024 * 1024


def media(emulator) -> list:
    return [r for r in emulator.requests if r.query.get("alt") == "media"]


@pytest.fixture
def voc_folder(emulator):
    """drive:Datasets/VOC: two archives, a checkpoint (a zip inside, not to unpack), a big
    file (several chunks, parallel streams) and small files in a subfolder."""
    files = {
        "VOC2007.zip": a_zip({"VOCdevkit/VOC2007/Annotations/000001.xml": b"<a>1</a>"}),
        "VOC2012.zip": a_zip({"VOCdevkit/VOC2012/Annotations/000002.xml": b"<a>2</a>"}),
        "weights/yolov4_tiny.pt": a_zip({"archive/data.pkl": b"not for unpacking"}),
        "big.bin": os.urandom(3 * MiB + 12345),
        "meta/classes.txt": b"cat\ndog\n",
        "meta/empty.txt": b"",
    }
    for rel, data in files.items():
        emulator.add_file(f"Datasets/VOC/{rel}", data)
    emulator.add_folder("Datasets/VOC/empty-folder")
    return files


def test_a_folder_lands_whole_with_its_archives_extracted(emulator, drive_env, tmp_path,
                                                          voc_folder):
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:Datasets/VOC", str(dest), "--extract",
                         "--chunk-size", "1M")
    assert code == 0, err
    assert out == f"{dest / 'VOC'}\n"
    expected = {os.path.normpath(k): v for k, v in voc_folder.items()}
    expected["VOCdevkit/VOC2007/Annotations/000001.xml"] = b"<a>1</a>"
    expected["VOCdevkit/VOC2012/Annotations/000002.xml"] = b"<a>2</a>"
    assert tree(dest / "VOC") == expected        # the .pt stays a file: not an archive name
    assert (dest / "VOC" / "empty-folder").is_dir() is False  # only files are staged
    assert err.strip().endswith(
        f"drive:Datasets/VOC -> {dest / 'VOC'}: 6 files (6 downloaded), "
        f"{_human(sum(len(v) for v in voc_folder.values()))}, 2 members extracted, "
        f"{err.strip().rsplit(', ', 1)[1]}")
    # The big file came in ranged chunks; every file exactly once.
    ranged = [r for r in media(emulator) if r.headers.get("Range", "").startswith("bytes=")]
    assert len(ranged) >= 4


def test_a_rerun_downloads_nothing_and_lists_each_folder_once(emulator, drive_env, tmp_path,
                                                              voc_folder):
    dest = tmp_path / "data"
    assert run("pull", "drive:Datasets/VOC", str(dest), "-x", "-q")[0] == 0
    emulator.clear_requests()
    code, out, err = run("pull", "drive:Datasets/VOC", str(dest), "-x", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["folder"] is True and summary["actions"] == {"cached": 6}
    assert summary["fetched"] == 0 and len(summary["files"]) == 6
    assert media(emulator) == []
    lists = [r for r in emulator.requests if r.path == "/drive/v2/files" and r.method == "GET"
             and "in parents" in r.query.get("q", "")]
    # VOC found and listed in one (rerun37: the path was resolved first, one request per
    # name), empty-folder, meta, weights: one listing each; nothing else asked.
    assert len(lists) == 4 == len(emulator.requests)


def test_a_rerun_of_many_files_lists_the_local_folders_a_bounded_number_of_times(
        emulator, drive_env, tmp_path, monkeypatch):
    """A rerun reads each file's stamp by its name: it listed the state folder (a stamp per
    file) for every file, n listings of n names (a rerun of 3,000 files took 17.6 s, of
    20,000 some minutes; 2.5 s after). Counted: the local listings of the whole rerun."""
    names = [f"img/{i:04d}.jpg" for i in range(120)]
    for name in names:
        emulator.add_file(f"ds/{name}", name.encode())
    dest = tmp_path / "data"
    assert run("pull", "drive:ds", str(dest), "-q")[0] == 0
    listed: list[str] = []
    real = os.listdir

    def listdir(path="."):
        listed.append(str(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    code, out, err = run("pull", "drive:ds", str(dest), "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"cached": len(names)}
    assert len(listed) <= 10, listed[:20]
    for name in names:
        assert (dest / "ds" / name).read_bytes() == name.encode()


def test_a_first_pull_of_many_files_lists_their_folder_a_bounded_number_of_times(
        emulator, drive_env, tmp_path, monkeypatch):
    """A killed run's leftovers (partials of other versions, records' temporary files) and
    the stamps of each name are looked for in one listing of the folder and of its state
    folder, taken once: three listings per file before, n names each (time in n²). A
    leftover listed is still removed."""
    names = [f"img/{i:04d}.jpg" for i in range(120)]
    for name in names:
        emulator.add_file(f"ds/{name}", name.encode())
    folder = tmp_path / "data" / "ds" / "img"
    folder.mkdir(parents=True)
    stale = folder / ".0007.jpg.0123456789abcdef.partial"  # another version's, killed
    stale.write_bytes(b"old")
    listed: list[str] = []
    real = os.listdir

    def listdir(path="."):
        listed.append(os.path.abspath(path) if isinstance(path, str) else "fd")
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    code, out, err = run("pull", "drive:ds", str(tmp_path / "data"), "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"download": len(names)}
    assert listed.count(str(folder)) <= 3, listed.count(str(folder))
    # The stamps: the state folder listed once too (a stamp per file), not once per file.
    assert listed.count("fd") + listed.count(str(folder / ".drivestage")) <= 6, \
        listed.count("fd")
    assert not stale.exists()
    assert {n for n in os.listdir(folder) if n.startswith(".")} <= {".drivestage"}
    for name in names:
        assert (tmp_path / "data" / "ds" / name).read_bytes() == name.encode()


def test_only_what_changed_on_drive_is_fetched_again(emulator, drive_env, tmp_path, voc_folder):
    dest = tmp_path / "data"
    assert run("pull", "drive:Datasets/VOC", str(dest), "-q")[0] == 0
    store = drivestage.connect()
    store.delete(store.resolve("Datasets/VOC/meta/classes.txt"))
    emulator.add_file("Datasets/VOC/meta/classes.txt", b"cat\ndog\nbird\n")
    emulator.add_file("Datasets/VOC/meta/new.txt", b"new")
    emulator.clear_requests()
    result = drivestage.pull("drive:Datasets/VOC", str(dest), quiet=True)
    assert isinstance(result, FolderPullResult)
    actions = {os.path.relpath(f.path, result.path): f.action for f in result.files}
    # A replaced file (another id, other bytes) is an update of the staged copy, as in a
    # single-file pull.
    assert actions.pop(os.path.join("meta", "classes.txt")) == "update"
    assert actions.pop(os.path.join("meta", "new.txt")) == "download"
    assert set(actions.values()) == {"cached"}
    assert len(media(emulator)) == 2
    assert (dest / "VOC/meta/classes.txt").read_bytes() == b"cat\ndog\nbird\n"
    for f in result.files:
        assert hashlib.md5(open(f.path, "rb").read()).hexdigest() == f.md5


def test_duplicate_names_fail_before_any_download(emulator, drive_env, tmp_path, voc_folder):
    a = emulator.add_file("Datasets/VOC/meta/dup.txt", b"1")
    b = emulator.add_file("Datasets/VOC/meta/dup.txt", b"2")
    code, out, err = run("pull", "drive:Datasets/VOC", str(tmp_path / "data"))
    assert code == 1
    assert "drive:Datasets/VOC/meta/dup.txt names 2 items" in err
    assert a in err and b in err and "drive:id:" in err
    assert media(emulator) == []
    assert tree(tmp_path / "data") == {}


def test_not_enough_disk_fails_before_any_download(emulator, drive_env, tmp_path, voc_folder):
    code, out, err = run("pull", "drive:Datasets/VOC", str(tmp_path / "data"),
                         "--reserve", "100000T")
    assert code == 1 and "not enough free disk space" in err
    assert "to download drive:Datasets/VOC: needs" in err
    assert media(emulator) == []


def test_faults_on_the_wire_are_retried_and_the_bytes_are_exact(emulator, drive_env, tmp_path,
                                                                voc_folder):
    emulator.faults.inject("GET", r"alt=media", status=503, retry_after=0, times=3)
    emulator.faults.drop("GET", r"alt=media", after_bytes=1000, times=1)
    code, out, err = run("pull", "drive:Datasets/VOC", str(tmp_path / "data"), "-q",
                         "--chunk-size", "1M")
    assert code == 0, err
    assert tree(tmp_path / "data" / "VOC") == {os.path.normpath(k): v
                                                for k, v in voc_folder.items()}


def test_google_docs_in_the_folder_are_skipped_and_reported(emulator, drive_env, tmp_path):
    emulator.add_file("F/a.txt", b"a")
    emulator.add_file("F/notes", b"", mime_type="application/vnd.google-apps.document")
    code, out, err = run("pull", "drive:F", str(tmp_path / "d"), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["skipped"] == ["drive:F/notes"]
    assert [f["name"] for f in summary["files"]] == ["a.txt"]
    assert "skipping drive:F/notes: it has no binary content" in err
    assert tree(tmp_path / "d" / "F") == {"a.txt": b"a"}


def test_a_folder_by_id_and_the_drive_root(emulator, drive_env, tmp_path):
    fid = emulator.add_folder("G")
    emulator.add_file("G/x.bin", b"x")
    code, out, err = run("pull", f"drive:id:{fid}", str(tmp_path / "d"), "-q")
    assert code == 0, err
    assert tree(tmp_path / "d") == {os.path.join("G", "x.bin"): b"x"}
    code, out, err = run("pull", "drive:", str(tmp_path / "e"))
    assert code == 2 and "drive: is the root of the drive; name a folder in it" in err


def test_a_folder_on_a_drive_mount(tmp_path):
    mount = tmp_path / "MyDrive" / "VOC"
    (mount / "sub").mkdir(parents=True)
    (mount / "a.zip").write_bytes(a_zip({"x/y.txt": b"y"}))
    (mount / "sub" / "b.txt").write_bytes(b"b")
    code, out, err = run("pull", str(mount), str(tmp_path / "data"), "-x", "-q")
    assert code == 0, err
    assert tree(tmp_path / "data" / "VOC") == {"a.zip": (mount / "a.zip").read_bytes(),
                                                os.path.join("x", "y.txt"): b"y",
                                                os.path.join("sub", "b.txt"): b"b"}


def _human(n: int) -> str:
    from drivestage.sizes import format_size as human

    return human(n)


def test_a_failure_part_way_keeps_what_was_staged_and_the_rerun_finishes(
        emulator, drive_env, tmp_path, voc_folder):
    big = emulator.find("Datasets/VOC/big.bin")["id"]
    # Small files go first; the big one (fetched last, in ranged streams) is refused once.
    emulator.faults.inject("GET", rf"{big}.*alt=media", status=403,
                           reason="insufficientFilePermissions", times=1)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:Datasets/VOC", str(dest), "-q", "--chunk-size", "1M")
    assert code == 1 and "big.bin" in err
    assert not (dest / "VOC/big.bin").exists()
    code, out, err = run("pull", "drive:Datasets/VOC", str(dest), "--json",
                         "--chunk-size", "1M")
    assert code == 0, err
    actions = {f["name"]: f["action"] for f in json.loads(out)["files"]}
    # Which ranged stream met the refusal decides whether a prefix was already written.
    assert actions.pop("big.bin") in ("download", "resume")
    assert set(actions.values()) == {"cached"}
    assert tree(dest / "VOC") == {os.path.normpath(k): v for k, v in voc_folder.items()}


def test_two_processes_pulling_one_folder_download_each_file_once(emulator, drive_env,
                                                                  tmp_path, voc_folder):
    """DDP ranks or two notebook cells pulling the same folder: every byte crosses once."""
    import subprocess

    emulator.faults.latency(0.02, method="GET", path=r"alt=media")
    env = dict(os.environ, **drive_env)
    cmd = ["pull", "drive:Datasets/VOC", str(tmp_path / "data"), "-q", "--json",
           "--chunk-size", "1M"]
    procs = [cli_server().popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    for out, _ in outs:
        assert json.loads(out)["size"] == sum(len(v) for v in voc_folder.values())
    served = sum(r.bytes_out for r in media(emulator))
    assert served == sum(len(v) for v in voc_folder.values())
    assert tree(tmp_path / "data" / "VOC") == {os.path.normpath(k): v
                                                for k, v in voc_folder.items()}


def test_a_folder_in_a_shared_drive(emulator, drive_env, tmp_path):
    team = emulator.add_shared_drive("Team Data")
    emulator.add_file("VOC/a.zip", a_zip({"VOCdevkit/x.txt": b"x"}), drive_id=team)
    emulator.add_file("VOC/sub/b.bin", b"b" * 1000, drive_id=team)
    code, out, err = run("pull", "drive:shared/Team Data/VOC", str(tmp_path / "d"), "-x",
                         "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert [f["src"] for f in summary["files"]] == ["drive:shared/Team Data/VOC/a.zip",
                                                     "drive:shared/Team Data/VOC/sub/b.bin"]
    staged = tree(tmp_path / "d" / "VOC")
    assert staged[os.path.join("VOCdevkit", "x.txt")] == b"x"
    assert staged[os.path.join("sub", "b.bin")] == b"b" * 1000


@pytest.mark.slow
def test_a_folder_pull_killed_part_way_resumes_its_partial_file(emulator, drive_env, tmp_path):
    """SIGKILL while the big file streams: the rerun keeps the staged small files and
    continues the big one from its partial."""
    import subprocess

    from _kill import sigkill_when
    from drivestage import download as dl

    chunk = 64 * 1024
    small = {f"small/{i}.txt": os.urandom(1000 + i) for i in range(6)}
    for rel, data in small.items():
        emulator.add_file(f"K/{rel}", data)
    big = os.urandom(40 * chunk)
    emulator.add_file("K/big.bin", big)
    entry = drivestage.connect().resolve("K/big.bin")
    dest = tmp_path / "data"
    partial = dl.partial_path(str(dest / "K" / "big.bin"), entry)
    emulator.faults.throttle(512 * 1024)  # slow enough that the kill lands mid-file
    cmd = ["pull", "drive:K", str(dest), "-q", "--chunk-size", str(chunk), "-j", "2"]
    env = dict(os.environ, **drive_env)   # (small files first, then big.bin)
    proc = cli_server().popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Killed once the partial's record (the ranges a rerun trusts) holds 4 chunks.
    target = str(dest / "K" / "big.bin")
    sigkill_when(proc, lambda: dl.partial_size(target, entry) >= 4 * chunk,
                 "the big file never started")
    have = dl.partial_size(target, entry)
    assert os.path.exists(partial)
    assert not (dest / "K" / "big.bin").exists() and 4 * chunk <= have < len(big)
    emulator.faults.throttle(None)
    rerun = cli_server().run([*cmd, "--json"], env=env, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    files = {f["name"]: f for f in json.loads(rerun.stdout)["files"]}
    assert files["big.bin"]["action"] == "resume"
    assert files["big.bin"]["resumed_from"] == have
    assert {files[f"{i}.txt"]["action"] for i in range(6)} == {"cached"}
    assert tree(dest / "K") == {"big.bin": big,
                                **{os.path.normpath(k): v for k, v in small.items()}}


def test_an_item_named_like_the_stamp_folder_is_left_out(emulator, drive_env, tmp_path):
    """One a Drive mount synced from a DEST in it (attackpull35): never data, never staged."""
    emulator.add_file("R/.drivestage/x.json", b"{}")
    code, out, err = run("pull", "drive:R", str(tmp_path / "d"))
    assert code == 0, err
    assert not (tmp_path / "d" / "R" / ".drivestage" / "x.json").exists()
    code, out, err = run("pull", "drive:R/.drivestage", str(tmp_path / "e"))
    assert code == 2
    assert "the name .drivestage is where drivestage keeps its stamps and locks" in err
    assert tree(tmp_path / "e") == {}


def test_include_and_exclude_choose_what_a_folder_pull_stages(emulator, drive_env, tmp_path,
                                                              voc_folder):
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:Datasets/VOC", str(dest), "--include", "*.zip",
                         "--include", "meta/classes.txt", "--exclude", "VOC2012*", "-q")
    assert code == 0, err
    assert tree(dest / "VOC") == {"VOC2007.zip": voc_folder["VOC2007.zip"],
                                  os.path.join("meta", "classes.txt"): b"cat\ndog\n"}
    emulator.clear_requests()
    code, out, err = run("pull", "drive:Datasets/VOC", str(dest), "--exclude", "weights",
                         "--exclude", "big.bin", "-q", "--json")
    assert code == 0, err
    assert sorted(f["name"] for f in json.loads(out)["files"]) == [
        "VOC2007.zip", "VOC2012.zip", "classes.txt", "empty.txt"]
    listed = [r.query.get("q", "") for r in emulator.requests
              if r.path == "/drive/v2/files" and "in parents" in r.query.get("q", "")]
    weights = emulator.find("Datasets/VOC/weights")["id"]
    assert not any(weights in q for q in listed)  # an excluded folder is never listed


def test_include_on_a_single_file_is_a_usage_error(emulator, drive_env, tmp_path):
    emulator.add_file("one.bin", b"1")
    code, out, err = run("pull", "drive:one.bin", str(tmp_path / "d"), "--include", "*.bin")
    assert code == 2
    assert "--include/--exclude choose files inside a folder, and drive:one.bin is one file" in err
    assert not (tmp_path / "d" / "one.bin").exists()
