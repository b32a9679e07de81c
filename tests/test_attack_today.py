"""Attacks on the day's changes: a stamp's hand-edited ``access`` (keys that are wrong,
stale, huge, not keys or not text); pull --extract's streams begun before a zip's member list
is checked; a replaced checkpoint's copies beside a hostile sidecar on Drive only; prune
with sidecars that name no epoch."""
from __future__ import annotations

import glob
import json
import os

import pytest
from click.testing import CliRunner

from drivestage.cli import cli
from drivestage.drive.resources import ResourceKeys

from _checkpoints import RUN, md5, save, sidecar_json
from _drive_state import live_md5s

TEACHER = "teacher@school.edu"
KEYS = "X-Goog-Drive-Resource-Keys"


def pull(*args):
    result = CliRunner().invoke(cli, ["pull", *args, "-q", "--json"], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _edit_stamp(dest, **fields):
    (path,) = glob.glob(os.path.join(dest, ".drivestage", "*.json"))
    with open(path) as fh:
        stamp = json.load(fh)
    stamp.update(fields)
    with open(path, "w") as fh:
        json.dump(stamp, fh)
    return path


def _keyed(emulator):
    folder = emulator.add_folder("Course", owner=TEACHER, resource_key="0-folderKEY")
    fid = emulator.add_file("Course/x.bin", b"x" * 1000, owner=TEACHER)
    return folder, fid


@pytest.mark.parametrize("access", [
    "{other}/0-otherKEY",                       # a key for another file
    "{other}/0-otherKEY,{fid}/0-wrongKEY",      # and a wrong one for the file itself
    "{folder}/0-staleKEY",                      # the folder's key before the owner rotated it
])
def test_a_stamp_with_a_wrong_access_chain_still_downloads(emulator, local_state, drive_env,
                                                             tmp_path, access):
    """The rerun must find the file by its path and download it (the local copy deleted);
    the stamp then holds the right chain again, so a third run is one call."""
    folder, fid = _keyed(emulator)
    other = emulator.add_folder("Other", owner=TEACHER, resource_key="0-otherKEY")
    src, dest = f"drive:id:{folder}:0-folderKEY/x.bin", str(tmp_path / "d")
    assert pull(src, dest)[0] == 0
    _edit_stamp(dest, access=access.format(other=other, fid=fid, folder=folder))
    os.remove(os.path.join(dest, "x.bin"))
    code, out, err = pull(src, dest)
    assert code == 0, err
    assert (tmp_path / "d" / "x.bin").read_bytes() == b"x" * 1000
    emulator.clear_requests()
    code, out, err = pull(src, dest)
    assert code == 0, err
    assert json.loads(out)["api_calls"] == 1
    assert [(r.kind, r.status, r.headers.get(KEYS)) for r in emulator.requests] == \
        [("files.get", 200, f"{folder}/0-folderKEY")]


@pytest.mark.parametrize("access", [
    "a/b\r\nX-Evil: 1", "a/b\nX-Evil: 1", "\u00e9/\u00e9", "a/b/c", "/", ",,,,", "",
    "A" * 100_000 + "/" + "B" * 100_000, ",".join(f"i{n}/k{n}" for n in range(50_000)),
    "x" * 5_000_000,
])
def test_a_hostile_access_never_reaches_a_header(emulator, local_state, drive_env, tmp_path,
                                                 access):
    """A stamp's ``access`` edited by hand: nothing but short plain ``id/key`` pairs is ever
    sent, nothing hangs, and the rerun is still right (found by its path)."""
    folder, fid = _keyed(emulator)
    src, dest = f"drive:id:{folder}:0-folderKEY/x.bin", str(tmp_path / "d")
    assert pull(src, dest)[0] == 0
    _edit_stamp(dest, access=access)
    emulator.clear_requests()
    code, out, err = pull(src, dest)
    assert code == 0, err
    assert json.loads(out)["action"] == "cached"
    for r in emulator.requests:
        header = r.headers.get(KEYS) or ""
        assert len(header) < 1000 and "\n" not in header and "\r" not in header
        assert "X-Evil" not in header


@pytest.mark.parametrize("access", [None, 12, ["a/b"], {"a": "b"}])
def test_an_access_of_another_type_or_none_is_a_plain_rerun(emulator, local_state, drive_env,
                                                            tmp_path, access):
    """A stamp from before the change (no ``access``), or one edited to a non-string."""
    folder, fid = _keyed(emulator)
    src, dest = f"drive:id:{folder}:0-folderKEY/x.bin", str(tmp_path / "d")
    assert pull(src, dest)[0] == 0
    path = _edit_stamp(dest, access=access)
    if access is None:
        with open(path) as fh:
            stamp = json.load(fh)
        del stamp["access"]
        with open(path, "w") as fh:
            json.dump(stamp, fh)
    code, out, err = pull(src, dest)
    assert code == 0, err
    assert json.loads(out)["action"] == "cached"
    emulator.clear_requests()
    code, out, err = pull(src, dest)
    assert json.loads(out)["api_calls"] == 1


def test_restore_keeps_only_short_plain_pairs():
    keys = ResourceKeys()
    keys.restore("F", "G/" + "k" * 5000 + ",H/0-hKEY," + ",".join(f"i{n}/k" for n in range(10**5)))
    pairs = keys.chain("F").split(",")
    assert pairs[0] == "H/0-hKEY" and len(pairs) <= 64
    keys.learn("S", "0-" + "s" * 300)       # a server's listing: as long a key is not kept
    assert keys.key("S") is None
    keys.restore(["not", "an id"], "H/0-hKEY")   # type: ignore[arg-type]


def test_restore_does_not_override_a_key_learnt_in_this_run():
    keys = ResourceKeys()
    keys.learn("D", "0-freshKEY")
    keys.learn("F", via="D")
    keys.restore("F", "D/0-staleKEY")
    assert keys.chain("F") == "D/0-freshKEY"
    keys2 = ResourceKeys()
    keys2.restore("F", "OTHER/0-oKEY")
    keys2.learn("D", "0-dKEY")
    keys2.learn("F", via="D")      # this run's listing wins over a stamp's guess
    assert keys2.chain("F") == "D/0-dKEY"


# ------------------------------------------------- pull --extract: streams begun before the check

def _held(partial, size):
    """The ranges a partial's record claims to hold."""
    from drivestage.partials import Ranges

    record = Ranges.load(partial, size)
    assert record is not None
    held, at = [], 0
    for a, b in record.missing() + [(size, size)]:
        if a > at:
            held.append((at, a))
        at = b
    assert record.total() == sum(b - a for a, b in held)
    return held


def _big_zip():
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(8):
            zf.writestr(f"ds/p{i}.bin", os.urandom(256 << 10))
    return buf.getvalue()


@pytest.mark.parametrize("exc", [KeyboardInterrupt, MemoryError])
def test_an_interrupt_while_the_member_list_is_checked(emulator, local_state, drive_env,
                                                       tmp_path, monkeypatch, capfd, exc):
    """Ctrl-C (or any BaseException) at the moment the begun streams fetch and the member list
    is checked: the streams and the hash thread stop (no thread left, no thread traceback),
    nothing reaches DEST, and the partial's record holds exactly the bytes it claims; the rerun
    completes with the right bytes."""
    import shutil
    import threading

    import drivestage
    from drivestage import download as dl

    before = set(threading.enumerate())   # another test's threads are not this pull's
    data = _big_zip()
    emulator.add_file("set.zip", data)
    dest = tmp_path / "d"
    real = shutil.disk_usage

    def disk_usage(path):
        if any(r.query.get("alt") == "media" and r.headers.get("Range", "").startswith("bytes=0-")
               for r in emulator.requests):
            raise exc()
        return real(path)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    seen = threading.Event()

    def wait_for_front(path):   # the streams have asked for the front: an event, bounded
        if not any(r.query.get("alt") == "media" for r in emulator.requests):
            return real(path)   # before the zip's tail was fetched
        for _ in range(1000):
            if any(r.headers.get("Range", "").startswith("bytes=0-") for r in emulator.requests):
                seen.set()
                break
            seen.wait(0.01)
        return disk_usage(path)

    monkeypatch.setattr(shutil, "disk_usage", wait_for_front)
    result = CliRunner().invoke(cli, ["pull", "drive:set.zip", str(dest), "-x", "-q"])
    assert result.exit_code != 0 and seen.is_set()
    assert isinstance(result.exception, (exc, SystemExit))
    for t in set(threading.enumerate()) - before:
        if t.name.startswith("drivestage-"):
            t.join(10)
            assert not t.is_alive(), t.name
    assert "Exception in thread" not in capfd.readouterr().err
    assert sorted(os.listdir(dest)) == [".drivestage"] or \
        all(n.startswith(".") for n in os.listdir(dest))
    assert not list(dest.glob("ds")) and not list(dest.glob(".drivestage-extract-*"))
    partial = dl.partial_path(str(dest / "set.zip"), drivestage.connect().resolve("set.zip"))
    with open(partial, "rb") as fh:
        for a, b in _held(partial, len(data)):
            fh.seek(a)
            assert fh.read(b - a) == data[a:b]
    monkeypatch.setattr(shutil, "disk_usage", real)
    result = CliRunner().invoke(cli, ["pull", "drive:set.zip", str(dest), "-x", "-q"])
    assert result.exit_code == 0, result.output
    assert (dest / "set.zip").read_bytes() == data
    assert len(list(dest.glob("ds/*.bin"))) == 8


@pytest.mark.parametrize("kind", ["tiny", "unsafe", "not-a-zip", "corrupt"])
def test_a_zip_inside_the_tail_or_refused_or_unfollowable(emulator, local_state, drive_env,
                                                          tmp_path, capfd, kind):
    """A tiny zip (all of it in the tail request), one with a member escaping DEST, one whose
    end record is garbage: a clean result or one clean line, no thread left behind."""
    import io
    import threading
    import zipfile

    before = set(threading.enumerate())   # another test's threads are not this pull's
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../escape.txt" if kind == "unsafe" else "ok.txt", b"hi")
    data = buf.getvalue()
    if kind == "not-a-zip":
        data = os.urandom(300 << 10)
    if kind == "corrupt":   # a checksum mismatch while following: restarted, then refused
        data = _big_zip()
    fid = emulator.add_file("t.zip", data)
    if kind == "corrupt":
        emulator.faults.corrupt(fid)   # every answer has a byte flipped
    dest = tmp_path / "d"
    result = CliRunner().invoke(cli, ["pull", "drive:t.zip", str(dest), "-x", "-q"])
    for t in set(threading.enumerate()) - before:
        if t.name.startswith("drivestage-"):
            t.join(10)
            assert not t.is_alive(), t.name
    assert "Exception in thread" not in capfd.readouterr().err
    assert not (tmp_path / "escape.txt").exists()
    if kind == "tiny":
        assert result.exit_code == 0, result.output
        assert (dest / "ok.txt").read_bytes() == b"hi"
    else:
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("Error: ") and "Traceback" not in result.stderr
        assert len(lines) == (2 if kind == "corrupt" else 1), result.stderr  # + the warning
        if kind == "corrupt":
            assert not (dest / "t.zip").exists() and not (dest / "ds").exists()
            assert not list(dest.glob(".drivestage-extract-*"))
        else:
            assert (dest / "t.zip").read_bytes() == data


# ------------------------------------------------- push/prune: sidecars on Drive

FOLDER = "Models/logs"


def _live(emu, folder=FOLDER) -> dict:
    return live_md5s(emu, folder)


def _cli(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_prune_with_sidecars_without_epochs_and_equal_times(emulator, local_state, drive_env,
                                                            tmp_path):
    """Checkpoints whose sidecars name no epoch (nothing ranks them by progress) and a
    keep-best policy: prune neither fails nor deletes a run's only checkpoints."""
    src = str(tmp_path / "logs")
    a = save(src, "last", None, 1_000)
    b = save(src, "best", None, 1_000)
    _cli("push", src, f"drive:{FOLDER}")
    for args in (["--keep-last", "1"], ["--keep-best", "1", "--metric", "map50"],
                 ["--keep-runs", "1"]):
        result = CliRunner().invoke(cli, ["prune", f"drive:{FOLDER}", *args])
        assert result.exit_code in (0, 2), result.output
        assert "Traceback" not in result.output
    assert _live(emulator) == {**a, **b}


@pytest.mark.parametrize("remote_side", ["not-json", "huge", "two", "names-no-copy", "folder"])
def test_copies_stay_bounded_with_a_hostile_remote_only_sidecar(emulator, store, env,
                                                                remote_side):
    """best.json only on Drive, and hostile: not JSON, over the size read, two same-named ones
    vouching for different copies, one naming an md5 no copy has, a folder. best.pt changes
    and is pushed five times: Drive holds the new copy and at most one old one, and the one
    kept is one the newest readable best.json vouches for."""
    from drivestage.upload_tree import push

    first = [os.urandom(2000), os.urandom(2001)]
    for data in first:
        emulator.add_file(f"{FOLDER}/best.pt", data)
    if remote_side == "not-json":
        emulator.add_file(f"{FOLDER}/best.json", b"\xff{not json" * 10)
    elif remote_side == "huge":
        emulator.add_file(f"{FOLDER}/best.json", sidecar_json(3, first[0]) + b" " * (2 << 20))
    elif remote_side == "two":
        emulator.add_file(f"{FOLDER}/best.json", sidecar_json(2, first[1]))
        emulator.add_file(f"{FOLDER}/best.json", sidecar_json(3, first[0]))  # either may be newest
    elif remote_side == "names-no-copy":
        emulator.add_file(f"{FOLDER}/best.json", sidecar_json(3, b"never uploaded"))
    else:
        emulator.add_folder(f"{FOLDER}/best.json")
    src = env / "logs"
    src.mkdir()
    for n in range(5):
        data = os.urandom(3000 + n)
        (src / "best.pt").write_bytes(data)
        push(str(src), FOLDER, store=store)
        copies = _live(emulator).get("best.pt", [])
        assert md5(data) in copies and len(copies) <= 2, (n, copies)
        if remote_side == "two":
            assert len(copies) == 2 and (set(copies) - {md5(data)}) <= \
                {md5(first[0]), md5(first[1])}
        elif remote_side != "folder":
            assert copies == [md5(data)], copies   # nothing vouched for: the old ones go
