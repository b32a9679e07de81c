"""Attacks on `pull --extract` (the extraction that follows the download, its worker
processes, the merge and the stamps): SIGKILL at exact moments found by audit hooks, then a
rerun; hostile servers; hostile archives."""
from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile

import pytest

import drivestage
from _archives import tree
from _ramdisk import tmp_path  # noqa: F401  (a fixture: hundreds of members per pull)
from _cli import child_env
from _forkcli import PIPE, cli_server
from _tmpfs import small_disk  # noqa: F401  (a fixture)
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from drivestage import download as dl
from test_extract_workers import worker_pids

#: A pull run in a child process that SIGKILLs itself at the ``n``-th audit event of kind
#: ``event`` whose arguments' repr holds ``needle`` (``n`` 0: never; the count of those
#: events is written to ``count`` when it ends). The kill is a real SIGKILL at a real
#: moment of the work: nothing of drivestage is replaced. (Here, forked with drivestage
#: imported: ``cli_server().popen(ARGS, script=KILLER)``, tests/_forkcli.py.)
KILLER = r"""
import os, signal, sys
event, needle, n, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sig = getattr(signal, os.environ.get("KILL_WITH", "SIGKILL"))
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT
MUTATING = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.link", "os.symlink",
            "os.truncate", "os.utime", "os.chmod", "subprocess.Popen"}
seen = [0]
active = [True]

def hook(name, args):
    if not active[0]:
        return
    if name == "open":
        if not (isinstance(args[2], int) and args[2] & WRITE):
            return
    elif name not in MUTATING:
        return
    if event != "*" and name != event:
        return
    if needle and needle not in repr(args):
        return
    seen[0] += 1
    if seen[0] == n:
        os.kill(os.getpid(), sig)

sys.addaudithook(hook)
sys.argv = ["drivestage"] + sys.argv[5:]
try:  # (a SIGINT's exit runs this too)
    from drivestage.entry import main
    main()
finally:
    active[0] = False
    with open(count, "w") as fh:
        fh.write(str(seen[0]))
"""

#: Enough small members that worker processes write them (see workers._WORTH).
N = 560


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), data)
    return buf.getvalue()


def _versions() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """v1 and v2 of an archive: most members in both (other bytes, other lengths), some
    only in v1 (removed by the update), some only in v2."""
    v1 = {f"ds/f{i:04d}.txt": os.urandom(1500) for i in range(N)}
    v1.update({f"ds/only1/{i}.txt": b"v1 only %d" % i for i in range(20)})
    v2 = {f"ds/f{i:04d}.txt": os.urandom(1700) for i in range(N)}
    v2.update({f"ds/only2/{i}.txt": b"v2 only %d" % i for i in range(20)})
    return v1, v2


def _replace_on_drive(path: str, data: bytes, tmp_path) -> None:
    """A new version of ``path`` on Drive under the same id."""
    store = drivestage.connect()
    old = store.resolve(path)
    local = tmp_path / "upload.bin"
    local.write_bytes(data)
    parent = store.resolve(path.rsplit("/", 1)[0]) if "/" in path else store.resolve("")
    assert store.upload(str(local), parent, old.name, replace=old).id == old.id


def _written(dest) -> int:
    """Members written so far into the temporary folders in ``dest``."""
    temps = [n for n in os.listdir(dest) if n.startswith(".drivestage-extract-")]
    try:
        return sum(len(os.listdir(dest / t / "ds")) for t in temps)
    except OSError:
        return 0


def _no_workers_left(pid: int) -> None:
    """The workers of the killed ``pid`` end by themselves (their orders' pipe ended)."""
    deadline = time.monotonic() + 20
    while worker_pids(pid):
        assert time.monotonic() < deadline, f"workers of {pid} still run: {worker_pids(pid)}"
        time.sleep(0.05)


def _killed_pull(emulator, dest, event: str, needle: str, n: int, count,
                 name: str = "set.zip") -> int:
    """``pull drive:d/NAME DEST -x`` in a child killed as :data:`KILLER` says; its pid
    (the count of matching events is in ``count`` when it was not killed)."""
    proc = cli_server().popen([event, needle, str(n), str(count), "pull", f"drive:d/{name}",
                               str(dest), "-x", "-q"], script=KILLER,
                              env=child_env(emulator), stdout=PIPE, stderr=PIPE)
    out, err = proc.communicate(timeout=120)
    if n:
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, err.decode()[-3000:])
    else:
        assert proc.returncode == 0, err.decode()[-3000:]
    return proc.pid


def _allowed_leftover(left: str, name: str = "set.zip") -> bool:
    return left.startswith((".drivestage-extract-", ".drivestage-replaced-")) or \
        (left.startswith(f".{name}.") and left.endswith((".partial", ".ranges"))) or \
        (left.startswith(f"..{name}.") and left.endswith(".tmp"))  # a record's temporary


def _check_after_kill(dest, v1: dict, v2: dict, a1: bytes, a2: bytes,
                      name: str = "set.zip") -> None:
    """What a SIGKILL may leave in DEST: every path holds v1's bytes or v2's (never a
    truncated file, never nothing where both versions have a member), and nothing of v2
    before the archive is verified and in place."""
    top = [n for n in os.listdir(dest) if n not in (name, "ds", ".drivestage")]
    assert all(_allowed_leftover(n, name) for n in top), top
    files = {k: v for k, v in tree(dest).items()
             if not _allowed_leftover(k.split("/")[0], name)}
    archive = files.pop(name)
    assert archive in (a1, a2)
    for path, data in files.items():
        assert data in (v1.get(path), v2.get(path)), path
    for path in set(v1) & set(v2):
        assert path in files, f"{path} vanished"
    if archive == a1:  # the new version is not verified and in place: DEST as it was
        assert files == v1


def _check_rerun(dest, v2: dict, a2: bytes, name: str = "set.zip") -> None:
    assert tree(dest) == {name: a2, **v2}
    assert sorted(os.listdir(dest)) == sorted([".drivestage", "ds", name])


def _pulled_v1(emulator, tmp_path, folder: str, v1: dict, a1: bytes, a2: bytes,
               name: str = "set.zip"):
    """DEST with v1 pulled and extracted; Drive then holds v2 under the same id."""
    if emulator.find(f"d/{name}") is None:
        emulator.add_file(f"d/{name}", a1)
    else:
        _replace_on_drive(f"d/{name}", a1, tmp_path)
    dest = tmp_path / folder
    drivestage.pull(f"drive:d/{name}", str(dest), extract=True)
    assert tree(dest) == {name: a1, **v1}
    _replace_on_drive(f"d/{name}", a2, tmp_path)
    return dest


# (event, needle, which one: a fraction of those counted in a clean run, or an index)
_MOMENTS = {
    "a worker starts": ("subprocess.Popen", "", 1),
    "the second worker starts": ("subprocess.Popen", "", 2),
    "the archive's rename into place": ("os.rename", "partial', ", 1),
    "the first stamp write": ("os.rename", ".json'", 1),
    "the merge's first rename": ("os.rename", "'f0", 1),
    "mid-merge": ("os.rename", "'f0", 0.5),
    "the merge's last file": ("os.rename", "'f0", 1.0),
    "the removal of v1's members": ("os.remove", "", 1),
    "the last stamp write": ("os.rename", ".json'", 1.0),
}


#: Every test here with DRIVESTAGE_TEST_SWEEP=all (about 8 minutes on 2 cores); by default
#: the moments and formats other tests cover least (CI's 10 minutes hold the whole suite).
_ALL = os.environ.get("DRIVESTAGE_TEST_SWEEP") == "all"
_DEFAULT_MOMENTS = ("a worker starts", "the archive's rename into place", "mid-merge",
                    "the removal of v1's members", "the last stamp write")


@pytest.mark.slow
@pytest.mark.parametrize("moment", [m for m in _MOMENTS if _ALL or m in _DEFAULT_MOMENTS])
def test_sigkill_at_exact_moments_of_an_update_then_a_rerun(emulator, drive_env, tmp_path,
                                                            moment):
    """`pull -x` of v2 over v1 (worker processes write the members), SIGKILLed at exact
    moments found by audit hooks: DEST holds v1's or v2's bytes at every path (nothing of
    v2 before v2 is verified), no worker outlives its parent for long, and a rerun leaves
    exactly v2's members and the archive."""
    v1, v2 = _versions()
    a1, a2 = _zip(v1), _zip(v2)
    event, needle, which = _MOMENTS[moment]
    count = tmp_path / "count"
    if isinstance(which, float):  # counted in a clean run first
        dest0 = _pulled_v1(emulator, tmp_path, "count-dest", v1, a1, a2)
        _killed_pull(emulator, dest0, event, needle, 0, count)
        _check_rerun(dest0, v2, a2)
        total = int(count.read_text())
        assert total > 0, f"no {event} with {needle!r} in a clean run"
        n = max(1, round(total * which))
    else:
        n = which
    dest = _pulled_v1(emulator, tmp_path, "dest", v1, a1, a2)
    pid = _killed_pull(emulator, dest, event, needle, n, count)
    _check_after_kill(dest, v1, v2, a1, a2)
    _no_workers_left(pid)
    result = drivestage.pull("drive:d/set.zip", str(dest), extract=True)
    assert result.extracted
    _check_rerun(dest, v2, a2)
    assert drivestage.pull("drive:d/set.zip", str(dest), extract=True).action == "cached"


def _tar(members: dict[str, bytes], gz: bool) -> bytes:
    import gzip
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 1700000000
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), compresslevel=1, mtime=0) if gz else buf.getvalue()


#: The archive's name on Drive and how its bytes are made: a zip and a plain tar are
#: written by worker processes, a tar.gz by the one thread that reads it as it arrives.
_FORMATS = {"set.zip": _zip, "set.tar": lambda m: _tar(m, False),
            "set.tar.gz": lambda m: _tar(m, True)}


def _spread(total: int) -> list[int]:
    """Where to stop a pull that makes ``total`` changes: the first, the middle and the
    last (about 20 points with ``DRIVESTAGE_TEST_SWEEP=all``: 7 minutes of CI's 10 for
    these sweeps alone; the exact moments above are always tried)."""
    if _ALL:
        return sorted({max(1, total * k // 16) for k in range(1, 16)} | {1, 2, 3, 5, 8, total})
    return sorted({1, max(1, total // 2), total})


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in _FORMATS if _ALL or n == "set.tar.gz"])
def test_sigkill_at_every_kind_of_moment_of_an_update_then_a_rerun(emulator, drive_env,
                                                                   tmp_path, name):
    """The same, at points spread over every change the pull makes to the disk (files
    created for writing, renames, removals, folders, times, modes, worker starts), for
    each kind of archive followed."""
    v1, v2 = _versions()
    a1, a2 = _FORMATS[name](v1), _FORMATS[name](v2)
    count = tmp_path / "count"
    dest0 = _pulled_v1(emulator, tmp_path, "count-dest", v1, a1, a2, name)
    _killed_pull(emulator, dest0, "*", "", 0, count, name)
    for i, n in enumerate(_spread(int(count.read_text()))):
        dest = _pulled_v1(emulator, tmp_path, f"dest{i}", v1, a1, a2, name)
        pid = _killed_pull(emulator, dest, "*", "", n, count, name)
        _check_after_kill(dest, v1, v2, a1, a2, name)
        _no_workers_left(pid)
        assert drivestage.pull(f"drive:d/{name}", str(dest), extract=True).extracted
        _check_rerun(dest, v2, a2, name)


def _interrupted_pull(emulator, dest, n: int, count, name: str) -> tuple[int, int, str]:
    """The pull of :func:`_killed_pull`, sent SIGINT (a Ctrl-C) at the ``n``-th change it
    makes: (pid, exit code, stderr)."""
    env = dict(child_env(emulator), KILL_WITH="SIGINT")
    proc = cli_server().popen(["*", "", str(n), str(count), "pull", f"drive:d/{name}",
                               str(dest), "-x", "-q"], script=KILLER, env=env, stdout=PIPE,
                              stderr=PIPE)
    try:
        out, err = proc.communicate(timeout=60)  # a Ctrl-C that hangs it fails here
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.pid, proc.returncode, err.decode()


@pytest.mark.slow
# By default tests/test_interrupt_commands.py's Ctrl-C at every call stands for these.
@pytest.mark.parametrize("name", [n for n in _FORMATS if _ALL])
def test_ctrl_c_at_points_spread_over_an_update_then_a_rerun(emulator, drive_env, tmp_path,
                                                             name):
    """A Ctrl-C at points spread over every change `pull -x` of v2 over v1 makes: it exits
    130 saying "Interrupted." (or 0 when it had nothing left to interrupt), never hangs,
    leaves no temporary folder and no worker, every path holds v1's or v2's bytes, and
    a rerun leaves exactly v2."""
    v1, v2 = _versions()
    a1, a2 = _FORMATS[name](v1), _FORMATS[name](v2)
    count = tmp_path / "count"
    dest0 = _pulled_v1(emulator, tmp_path, "count-dest", v1, a1, a2, name)
    _killed_pull(emulator, dest0, "*", "", 0, count, name)
    total = int(count.read_text())
    for i, n in enumerate(_spread(total)):
        dest = _pulled_v1(emulator, tmp_path, f"dest{i}", v1, a1, a2, name)
        pid, code, err = _interrupted_pull(emulator, dest, n, count, name)
        assert "Traceback" not in err, (n, total, err[-6000:])
        assert code in (0, 130), (n, code, err)
        if code == 130:
            assert err.strip().splitlines()[-1] == "Interrupted.", (n, err)
        _check_after_kill(dest, v1, v2, a1, a2, name)
        left = [p for p in os.listdir(dest) if p.startswith(".drivestage-")]
        assert left == [], (n, left)
        assert worker_pids(pid) == [], n
        assert drivestage.pull(f"drive:d/{name}", str(dest), extract=True).extracted
        _check_rerun(dest, v2, a2, name)


def test_a_stream_that_stalls_for_good_mid_member_ends_the_pull(emulator, drive_env, tmp_path):
    """Drive stops sending in the middle of the members (every answer holding that byte
    stalls, for good) while worker processes write them: the pull gives up after its
    retries (a bounded time, each stall cut by DRIVESTAGE_HTTP_TIMEOUT), exit 1, DEST
    exactly v1 with no temporary folder and no worker; once Drive answers again, the
    rerun finishes v2."""
    v1, v2 = _versions()
    a1, a2 = _zip(v1), _zip(v2)
    dest = _pulled_v1(emulator, tmp_path, "dest", v1, a1, a2)
    entry = drivestage.connect().resolve("d/set.zip")
    hold = emulator.faults.hold(entry.id, len(a2) // 3, timeout=300)
    try:
        env = dict(child_env(emulator), DRIVESTAGE_HTTP_TIMEOUT="1",
                   DRIVESTAGE_RETRY_ATTEMPTS="3")
        began = time.monotonic()
        proc = cli_server().popen(["pull",
                                   "drive:d/set.zip", str(dest), "-x", "-q"], env=env,
                                  stdout=PIPE, stderr=PIPE, text=True)
        _, err = proc.communicate(timeout=120)
        assert time.monotonic() - began < 60
        assert proc.returncode == 1, err
        assert "Traceback" not in err, err
        top = [n for n in os.listdir(dest) if n not in ("set.zip", "ds", ".drivestage")]
        assert all(n.startswith(".set.zip.") for n in top), top  # the partial, its record
        assert tree(dest) == {"set.zip": a1, **v1, **{n: tree(dest)[n] for n in top}}
        assert worker_pids(proc.pid) == []
    finally:
        hold.release()
    assert drivestage.pull("drive:d/set.zip", str(dest), extract=True).action == "resume"
    _check_rerun(dest, v2, a2)


# ---------------------------------------------------------------- hostile zips, followed


def _raw_zip(members: list[tuple[str, bytes]], comment: bytes = b"") -> bytearray:
    """A deflated zip of ``members`` in this order (duplicates allowed), fixed times."""
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), data)
            zf.comment = comment
    return bytearray(buf.getvalue())


def _central(blob: bytearray) -> list[int]:
    """Where each central directory entry starts."""
    import struct

    end = blob.rfind(b"PK\x05\x06")
    count, size, offset = struct.unpack_from("<HII", blob, end + 10)
    out, at = [], offset
    for _ in range(count):
        out.append(at)
        n, m, k = struct.unpack_from("<HHH", blob, at + 28)
        at += 46 + n + m + k
    return out


def _pad(big: bool) -> list[tuple[str, bytes]]:
    return [(f"pad/p{i:04d}.txt", b"pad %d" % i) for i in range(N if big else 3)]


def _hostile(kind: str, big: bool) -> bytes:
    import struct

    pad = _pad(big)
    x, y = os.urandom(3000), os.urandom(2000)
    if kind == "case":
        return bytes(_raw_zip(pad + [("ds/A.txt", x), ("ds/a.txt", y)]))
    if kind == "file then folder":
        return bytes(_raw_zip(pad + [("ds/a", x), ("ds/a/", b"")]))
    if kind == "folder then file":
        return bytes(_raw_zip(pad + [("ds/a/", b""), ("ds/a", x)]))
    if kind == "file then a file below it":
        return bytes(_raw_zip(pad + [("ds/a", x), ("ds/a/b", y)]))
    if kind == "a name twice":
        return bytes(_raw_zip(pad + [("ds/x", x), ("ds/x", y)]))
    if kind == "a name twice, far apart":
        return bytes(_raw_zip([("ds/x", x)] + pad + [("ds/x", y)]))
    if kind == "two entries, one local header":
        blob = _raw_zip(pad + [("ds/x", x), ("ds/y", x)])
        cds = _central(blob)
        struct.pack_into("<I", blob, cds[-1] + 42, struct.unpack_from("<I", blob, cds[-2] + 42)[0])
        return bytes(blob)
    if kind == "local name differs":
        blob = _raw_zip(pad + [("ds/x", x), ("ds/y", y)])
        local = struct.unpack_from("<I", blob, _central(blob)[-1] + 42)[0]
        blob[local + 30:local + 34] = b"ds/z"
        return bytes(blob)
    if kind == "bad crc in the last member":
        blob = _raw_zip(pad + [("ds/x", x), ("ds/y", y)])
        cd = _central(blob)[-1]
        struct.pack_into("<I", blob, cd + 16, struct.unpack_from("<I", blob, cd + 16)[0] ^ 1)
        return bytes(blob)
    if kind == "bytes before the zip":
        return b"#!/bin/sh\nexit 0\n" * 50 + bytes(_raw_zip(pad + [("ds/x", x)]))
    if kind == "a fake end record in the comment":
        fake = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0, 0, 0, 0, 0)
        return bytes(_raw_zip(pad + [("ds/x", x)], comment=b"c" * 40 + fake))
    if kind == "more entries declared":
        blob = _raw_zip(pad + [("ds/x", x)])
        end = blob.rfind(b"PK\x05\x06")
        struct.pack_into("<HH", blob, end + 8, len(pad) + 5, len(pad) + 5)
        return bytes(blob)
    if kind == "fewer entries declared":
        blob = _raw_zip(pad + [("ds/x", x), ("ds/y", y)])
        end = blob.rfind(b"PK\x05\x06")
        struct.pack_into("<HH", blob, end + 8, len(pad) + 1, len(pad) + 1)
        return bytes(blob)
    if kind == "a folder and a file named alike but for a slash":
        return bytes(_raw_zip(pad + [("ds/a/", b""), ("ds/a/f", x), ("ds/a", y)]))
    if kind == "cp437 and utf-8 names that decode alike":
        blob = _raw_zip(pad + [("ds/\u00fc.txt", x), ("ds/q.txt", y)])
        cd = _central(blob)[-1]  # ds/q.txt -> the cp437 byte of ü, without the utf-8 flag
        local = struct.unpack_from("<I", blob, cd + 42)[0]
        for at in (cd + 46, local + 30):
            blob[at + 3:at + 4] = b"\x81"
        return bytes(blob)
    raise AssertionError(kind)


_KINDS = ["case", "file then folder", "folder then file", "file then a file below it",
          "a name twice", "a name twice, far apart", "two entries, one local header",
          "local name differs", "bad crc in the last member", "bytes before the zip",
          "a fake end record in the comment", "more entries declared",
          "fewer entries declared", "a folder and a file named alike but for a slash",
          "cp437 and utf-8 names that decode alike"]


def _outcome(fn, dest) -> tuple:
    try:
        fn()
    except Exception as exc:
        return (type(exc).__name__, sorted(p for p in os.listdir(dest)
                                           if p not in (".drivestage", "h.zip")))
    return ("ok", {k: v for k, v in tree(dest).items() if k != "h.zip"})


@pytest.mark.parametrize("big", [False, True], ids=["threads", "workers"])
@pytest.mark.parametrize("kind", _KINDS)
def test_a_hostile_zip_followed_while_it_downloads_ends_as_its_usual_extraction(
        emulator, drive_env, tmp_path, kind, big):
    """A zip whose directory or headers lie, followed while it downloads (by threads, or
    by worker processes): the pull ends exactly as extracting the downloaded file does
    (the same members and bytes, or the same kind of error with nothing of it in DEST)."""
    from drivestage.extract import extract

    blob = _hostile(kind, big)
    emulator.add_file("d/h.zip", blob)
    local = tmp_path / "local" / "h.zip"
    local.parent.mkdir()
    local.write_bytes(blob)
    usual_dest, pulled = tmp_path / "usual", tmp_path / "pulled"
    usual_dest.mkdir()
    usual = _outcome(lambda: extract(local, usual_dest), usual_dest)
    followed = _outcome(lambda: drivestage.pull("drive:d/h.zip", str(pulled), extract=True),
                        pulled)
    assert followed == usual
    assert (pulled / "h.zip").read_bytes() == blob


# ---------------------------------------------------------------- a server that lies


def _short_answers(keep: int):
    """Every ranged answer cut to its first ``keep`` bytes, with a Content-Range and a
    Content-Length to match (a valid, if stingy, answer each time)."""
    import re

    from _proxy import Reply

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        rng = next((v for k, v in headers.items() if k.lower() == "content-range"), None)
        m = re.match(r"bytes (\d+)-(\d+)/(\d+)", rng or "")
        if status != 206 or m is None or len(body) <= keep:
            return Reply(status, headers, [body])
        a, total = int(m.group(1)), m.group(3)
        out = {k: v for k, v in headers.items()
               if k.lower() not in ("content-length", "content-range")}
        out["Content-Range"] = f"bytes {a}-{a + keep - 1}/{total}"
        out["Content-Length"] = str(keep)
        return Reply(206, out, [body[:keep]])
    return mutate


def test_a_server_that_answers_every_range_with_a_few_bytes_is_given_up_on(emulator,
                                                                           tmp_path):
    """Each ranged GET answered with its first 16 bytes only (206, Content-Range and
    Content-Length saying so): before, every such answer was taken as progress and the
    rest asked for again, one request per 16 bytes (16,000 requests for this 256 KiB zip,
    65 million for a 1 GiB one), never counted against the retries. Now a run of short
    answers that bring little fails like any other failing answer: one error line, a
    bounded number of requests, nothing in DEST but the partial."""
    from _proxy import Proxy

    members = {f"ds/{i}.bin": os.urandom(1000) for i in range(250)}
    blob = _zip(members)
    emulator.add_file("d/set.zip", blob)
    with Proxy(emulator.url) as proxy:
        proxy.on("GET", r"alt=media", _short_answers(16))
        env = dict(child_env(emulator), DRIVESTAGE_API_ROOT=proxy.url,
                   DRIVESTAGE_RETRY_ATTEMPTS="3")
        dest = tmp_path / "dest"
        res = cli_server().run(["pull", "drive:d/set.zip",
                                str(dest), "-x", "-q"], env=env, text=True, timeout=60)
        asked = proxy.count("GET", "alt=media")
    assert res.returncode == 1, (res.returncode, res.stderr[-2000:])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("Error: ") and "Traceback" not in res.stderr, res.stderr
    assert asked <= 12, asked
    assert [p for p in os.listdir(dest) if not p.startswith(".")] == []


@pytest.mark.parametrize("when", [1, 100, 400])
def test_a_disk_that_another_program_fills_while_workers_write(emulator, drive_env,
                                                                tmp_path, small_disk, when):
    """Another program fills DEST's disk once the workers have written ``when`` members
    of v2 into the temporary folder: the pull either finished first (exactly v2) or fails
    with one error line, DEST exactly v1 (its partial aside), no temporary folder, no
    worker; once there is room again the rerun leaves exactly v2."""
    v1, v2 = _versions()
    a1, a2 = _zip(v1), _zip(v2)
    disk = small_disk(16 << 20, inodes=6000)
    emulator.add_file("d/set.zip", a1)
    dest = disk / "dest"
    drivestage.pull("drive:d/set.zip", str(dest), extract=True)
    _replace_on_drive("d/set.zip", a2, tmp_path)
    emulator.faults.throttle(2 << 20)  # the workers follow the download for a while
    proc = cli_server().popen(["pull", "drive:d/set.zip",
                               str(dest), "-x", "-q"], env=child_env(emulator),
                              stdout=PIPE, stderr=PIPE, text=True)
    filler = disk / "filler"

    deadline = time.monotonic() + 60
    while proc.poll() is None and _written(dest) < when:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    try:
        with open(filler, "wb") as fh:  # every byte left
            while True:
                fh.write(b"\0" * (64 << 10))
                fh.flush()
    except OSError:  # full (the pull's own members may have taken the last inode first)
        pass
    _, err = proc.communicate(timeout=60)
    emulator.faults.throttle(None)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert worker_pids(proc.pid) == []
    assert not [n for n in os.listdir(dest) if n.startswith(".drivestage-")]
    files = {k: v for k, v in tree(dest).items() if not k.startswith(".set.zip.")}
    if proc.returncode == 0:
        assert files == {"set.zip": a2, **v2}
    else:
        assert proc.returncode == 1 and lines[-1].startswith("Error: "), err
        # Filled after v2's archive was verified and in place (a fill that lands late), the
        # pull fails extracting it: v1's members stay, beside the new archive, or (filled
        # while the stamp was written after the merge) v2's are in place; every path holds
        # one version's bytes, and the rerun finishes.
        archive = files.pop("set.zip")
        assert archive in (a1, a2), lines[-1]
        for path, data in files.items():
            assert data in (v1.get(path), v2.get(path)), (path, lines[-1])
        if archive == a1:
            assert files == v1, lines[-1]
    filler.unlink(missing_ok=True)
    assert drivestage.pull("drive:d/set.zip", str(dest), extract=True).extracted
    assert tree(dest) == {"set.zip": a2, **v2}


def test_ctrl_c_while_the_download_stalls_mid_member_ends_at_once(emulator, drive_env,
                                                                  tmp_path):
    """Drive stops sending in the middle of the members (for good) while worker processes
    write the ones that arrived, and the user presses Ctrl-C: the pull ends within
    seconds (not once the connection's timeout, 120 s, cuts the stalled read), exit 130,
    "Interrupted.", no temporary folder, no worker, DEST exactly v1."""
    v1, v2 = _versions()
    a1, a2 = _zip(v1), _zip(v2)
    dest = _pulled_v1(emulator, tmp_path, "dest", v1, a1, a2)
    entry = drivestage.connect().resolve("d/set.zip")
    hold = emulator.faults.hold(entry.id, len(a2) // 2, timeout=300)
    try:
        proc = cli_server().popen(["pull",
                                   "drive:d/set.zip", str(dest), "-x", "-q"],
                                  env=child_env(emulator), stdout=PIPE,
                                  stderr=PIPE, text=True)

        deadline = time.monotonic() + 60
        while _written(dest) < 50:  # the workers wrote what arrived; the rest is held
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        took = time.monotonic() - began
    finally:
        hold.release()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "Interrupted.", err
    assert took < 10, took
    assert worker_pids(proc.pid) == []
    assert not [n for n in os.listdir(dest) if n.startswith(".drivestage-")]
    files = {k: v for k, v in tree(dest).items() if not k.startswith(".set.zip.")}
    assert files == {"set.zip": a1, **v1}


@pytest.mark.slow
def test_two_pulls_of_archives_whose_members_overlap_into_one_dest_at_once(
        emulator, drive_env, tmp_path):
    """`pull -x a.zip` and `pull -x b.zip` into one DEST at once (processes, each followed
    by worker processes); the two share 100 member paths (other bytes, other sizes), and a
    third process pulls a.zip too: every command succeeds, each path holds one archive's
    bytes (a shared one: either's), both stamps say extracted, nothing is left behind;
    then a rerun of each leaves its own bytes at every one of its paths."""
    a = {f"ds/f{i:04d}.txt": os.urandom(1500) for i in range(N)}
    b = {f"ds/f{i:04d}.txt": os.urandom(1600) for i in range(100)}
    b.update({f"ds/g{i:04d}.txt": os.urandom(1600) for i in range(N)})
    za, zb = _zip(a), _zip(b)
    emulator.add_file("d/a.zip", za)
    emulator.add_file("d/b.zip", zb)
    dest = tmp_path / "dest"
    emulator.faults.throttle(4 << 20)  # the three overlap
    procs = [cli_server().popen(["pull", f"drive:d/{n}",
                                 str(dest), "-x", "-q"], env=child_env(emulator),
                                stdout=PIPE, stderr=PIPE, text=True)
             for n in ("a.zip", "b.zip", "a.zip")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    emulator.faults.throttle(None)
    got = tree(dest)
    assert got.pop("a.zip") == za and got.pop("b.zip") == zb
    assert set(got) == set(a) | set(b)
    for path, data in got.items():
        assert data in (a.get(path), b.get(path)), path
    assert sorted(os.listdir(dest)) == [".drivestage", "a.zip", "b.zip", "ds"]
    for name, members in (("a.zip", a), ("b.zip", b)):
        drivestage.pull(f"drive:d/{name}", str(dest), extract=True)
        now = tree(dest)
        assert {p: now[p] for p in members} == members


def test_a_server_that_caps_each_answer_at_96_kib_still_serves_the_pull(emulator, tmp_path):
    """The other side of the rule above: a server (a proxy, a CDN) that answers each range
    with at most 96 KiB is slow, not broken: the pull asks for the rest each time and
    stages the archive and its members."""
    from _proxy import Proxy

    members = {f"ds/{i}.bin": os.urandom(1000) for i in range(400)}
    blob = _zip(members)
    emulator.add_file("d/set.zip", blob)
    with Proxy(emulator.url) as proxy:
        proxy.on("GET", r"alt=media", _short_answers(96 << 10))
        env = dict(child_env(emulator), DRIVESTAGE_API_ROOT=proxy.url,
                   DRIVESTAGE_RETRY_ATTEMPTS="3")
        dest = tmp_path / "dest"
        res = cli_server().run(["pull", "drive:d/set.zip",
                                str(dest), "-x", "-q"], env=env, text=True, timeout=60)
        asked = proxy.count("GET", "alt=media")
    assert res.returncode == 0, res.stderr
    assert tree(dest) == {"set.zip": blob, **members}
    assert asked >= len(blob) // (96 << 10)
