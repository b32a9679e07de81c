"""Attacks on the streams that measuring stops again (streams.Pass._retire) and on the
"cores, not the link" check (drivestage.cpuload). The measuring's decision is the moment an
attacker chooses: each test makes the retirement happen exactly where it hurts most (inside
a stream's write, right after a split, during a retry, before a failure, while an
extraction follows the file) by calling the very code the measuring calls, from a hook at
that moment. What a user relies on: the file's bytes, verified, each byte fetched once, no
hang, and a rerun that asks only for what is missing. Then the bounds of a pass: a hash
that cannot read the partial back, a partial or a source file that got shorter, end the
download with an error instead of a wait or a loop for good."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
import types

import pytest
from _download_fixtures import _fast, out, passes, small_splits, store  # noqa: F401

from drivestage import cpuload
from drivestage import download as dl
from drivestage import prefix_hash, streams
from drivestage.drive import connect
from drivestage.drive.transport import Transport
from drivestage.emulator import routes_media
from drivestage.errors import RemoteError
from drivestage.unpack import Unpacking

MiB = 1 << 20


def _pieces_written(monkeypatch) -> threading.local:
    """``.piece``: the piece the calling stream thread last wrote into."""
    mine = threading.local()
    original_write = streams.Pass.write

    def write(self, piece, offset, data_):
        mine.piece = piece
        return original_write(self, piece, offset, data_)

    monkeypatch.setattr(streams.Pass, "write", write)
    return mine


def _ranges(emu, fid):
    out = []
    for r in emu.requests:
        if r.method == "GET" and r.path.endswith(fid) and r.query.get("alt") == "media":
            a, b = r.headers["Range"].split("=")[1].split("-")
            out.append((int(a), int(b) + 1))
    return out


def _retire_one(run: streams.Pass) -> list[tuple[int, int]]:
    """What the measuring does when the last stream added did not pay; the pieces cut."""
    with run.lock:
        before = {id(p): (p.pos, p.end) for p in run.pieces}
        run._retire(1)
        return [before[id(p)] for p in run.pieces if p.retired]


def _hook_pwrite(monkeypatch, when):
    """Call ``when(offset, length)`` inside the streams' pwrite, before the bytes land (the
    stream's piece already counts them as its own: ``Pass.write`` moved ``pos``)."""
    real = os.pwrite

    def pwrite(fd, data, offset):
        when(offset, len(data))
        return real(fd, data, offset)

    names = {k: getattr(os, k) for k in dir(os) if not k.startswith("__")}
    monkeypatch.setattr(streams, "os", types.SimpleNamespace(**{**names, "pwrite": pwrite}))


def test_a_stream_stopped_while_its_bytes_are_being_written_loses_and_repeats_none(
        emulator, store, out, small_splits, passes, monkeypatch):
    """The measuring stops the stream ahead exactly while its first block is inside
    pwrite: the block lands and counts, the rest of its piece goes to the first stream,
    which asks for exactly that, once; the file verifies and each byte came once."""
    data = os.urandom(4 * MiB)
    fid = emulator.add_file("w.bin", data)
    entry = store.resolve("w.bin")
    emulator.faults.throttle(per_connection=8 * MiB)  # both streams read for a while
    cut: list[tuple[int, int]] = []

    def when(offset, n):
        if not cut and offset >= len(data) // 2:
            cut.extend(_retire_one(passes[0]))

    _hook_pwrite(monkeypatch, when)
    emulator.clear_requests()
    res = dl.download(store, entry, str(out / "w.bin"), jobs=2)
    assert open(out / "w.bin", "rb").read() == data and res.md5 == entry.md5
    assert res.fetched == len(data) and len(cut) == 1
    (pos, end), = cut
    assert pos > len(data) // 2 and end == len(data)
    asked = _ranges(emulator, fid)
    assert asked[-1] == (pos, end) and len(asked) == 3, asked
    assert os.listdir(out) == ["w.bin"]


def test_a_stream_stopped_right_after_it_split_a_piece_asks_for_nothing(
        emulator, store, out, small_splits, passes, monkeypatch):
    """The retirement comes between a split and the new stream's first request: its piece
    is empty, it sends no request (an empty range would be ``bytes=a-(a-1)``, which Drive
    refuses) and ends; the first stream fetches the whole file in two requests."""
    data = os.urandom(2 * MiB)
    fid = emulator.add_file("s.bin", data)
    entry = store.resolve("s.bin")
    emulator.faults.throttle(per_connection=8 * MiB)
    original = streams.Pass.claim
    cut: list[tuple[int, int]] = []
    starts: list[int] = []

    def claim(self):
        piece = original(self)
        if piece is not None and piece.pos > 0 and not cut:
            starts.append(piece.pos)
            cut.extend(_retire_one(self))
        return piece

    monkeypatch.setattr(streams.Pass, "claim", claim)
    emulator.clear_requests()
    res = dl.download(store, entry, str(out / "s.bin"), jobs=2)
    assert open(out / "s.bin", "rb").read() == data and res.fetched == len(data)
    assert cut == [(starts[0], len(data))]  # the new piece, nothing of it read yet
    asked = _ranges(emulator, fid)
    assert all(a < b for a, b in asked) and len(asked) <= 2, asked
    assert sorted(asked)[-1][1] == len(data)


def test_a_stream_stopped_during_its_retry_does_not_ask_again(
        emulator, store, out, small_splits, passes, monkeypatch):
    """Both streams' connections break; the measuring stops the stream ahead while it is
    in its retry (between the broken answer and the next request): it asks nothing more,
    the other one fetches its rest, and the file verifies with each byte counted once."""
    data = os.urandom(4 * MiB)
    fid = emulator.add_file("r.bin", data)
    entry = store.resolve("r.bin")
    emulator.faults.throttle(per_connection=8 * MiB)
    emulator.faults.drop("GET", r"alt=media", after_bytes=300_000, times=2)
    mine = _pieces_written(monkeypatch)
    original_drop = Transport.drop
    cut: list[tuple[int, int]] = []

    def drop(self):
        piece = getattr(mine, "piece", None)
        run = passes[0] if passes else None
        if piece is not None and run is not None and not cut:
            with run.lock:
                ahead = len(run.pieces) == 2 and piece is max(run.pieces, key=lambda p: p.pos)
                if ahead:
                    cut.extend(_retire_one(run))
                    assert piece.retired
        original_drop(self)

    monkeypatch.setattr(Transport, "drop", drop)
    emulator.clear_requests()
    res = dl.download(store, entry, str(out / "r.bin"), jobs=2)
    assert open(out / "r.bin", "rb").read() == data and res.md5 == entry.md5
    assert res.fetched == len(data) and len(cut) == 1, cut
    (pos, end), = cut
    asked = _ranges(emulator, fid)
    # The stopped stream never asked from its cut again; its rest was asked for once.
    assert [a for a, b in asked if a == pos] == [pos] and (pos, end) in asked, asked


def test_a_stream_stopped_while_the_server_ignores_range_still_verifies(
        emulator, store, out, small_splits, passes, monkeypatch):
    """A server (a proxy) that ignores Range and sends the whole file with 200: the first
    such answer stops the stream ahead (it would only skip to its part of the same bytes)
    and reads on to the end alone (tests/test_range_ignored.py). The measuring's stop in
    the middle of it then finds no stream to stop; nothing is missing, and each byte of
    the file is counted once."""
    emulator.faults.ignore_range()
    data = os.urandom(4 * MiB)
    emulator.add_file("i.bin", data)
    entry = store.resolve("i.bin")
    emulator.faults.throttle(per_connection=16 * MiB)
    cut: list[list[tuple[int, int]]] = []

    def when(offset, n):
        if not cut and offset >= len(data) // 2 + MiB // 2:
            cut.append(_retire_one(passes[0]))

    _hook_pwrite(monkeypatch, when)
    res = dl.download(store, entry, str(out / "i.bin"), jobs=2)
    assert open(out / "i.bin", "rb").read() == data and res.md5 == entry.md5
    assert res.fetched == len(data) and cut == [[]] and passes[0].whole


def test_a_download_failing_after_a_retirement_resumes_with_only_the_missing_bytes(
        emulator, store, out, small_splits, passes, monkeypatch):
    """The stream ahead is stopped, then the connection that was to fetch its rest fails
    for good: the record on disk holds exactly the bytes written, a hole where the stopped
    stream's rest was, and the rerun asks only for what is missing and verifies."""
    data = os.urandom(4 * MiB)
    fid = emulator.add_file("f.bin", data)
    entry = store.resolve("f.bin")
    target = str(out / "f.bin")
    emulator.faults.throttle(per_connection=8 * MiB)
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "1")
    cut: list[tuple[int, int]] = []

    def when(offset, n):
        if not cut and offset >= len(data) // 2:
            cut.extend(_retire_one(passes[0]))
            # Every request from now on (the rest of the stopped stream's piece) breaks.
            emulator.faults.drop("GET", r"alt=media", after_bytes=100_000, times=None)

    _hook_pwrite(monkeypatch, when)
    with pytest.raises(RemoteError):
        dl.download(store, entry, target, jobs=2)
    emulator.faults.clear()
    (pos, end), = cut
    partial = dl.partial_path(target, entry)
    with open(dl.ranges_path(partial)) as fh:
        recorded = json.load(fh)["done"]
    with open(partial, "rb") as fh:
        for a, b in recorded:  # what the record calls done is there
            fh.seek(a)
            assert fh.read(b - a) == data[a:b]
    kept = sum(b - a for a, b in recorded)
    assert 0 < kept < len(data) and not any(a < end and b > pos and b > pos + 100_000
                                            for a, b in recorded)
    monkeypatch.undo()  # the hooks off: an ordinary rerun
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.001")
    monkeypatch.setenv("DRIVESTAGE_RETRY_JITTER", "0")
    emulator.clear_requests()
    res = dl.download(store, entry, target, jobs=2)
    assert open(target, "rb").read() == data
    assert (res.resumed_from, res.fetched) == (kept, len(data) - kept)
    assert not any(a <= s < b for s, _ in _ranges(emulator, fid) for a, b in recorded)


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_an_archive_followed_while_its_stream_ahead_is_stopped_extracts_exactly_its_members(
        emulator, drive_env, tmp_path, small_splits, passes, monkeypatch, kind):
    """pull --extract of a tar, or of a zip (its central directory fetched first): the
    extraction follows the file from the front while the stream ahead is stopped mid-file;
    the rest arrives later through the first stream, the extraction waits for it and ends
    with exactly the archive's members, verified."""
    from _archives import a_zip

    members = {f"d/{i:03d}.bin": os.urandom(40_000 + i) for i in range(100)}
    if kind == "zip":
        blob = a_zip(members)
    else:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, body in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
        blob = buf.getvalue()
    emulator.add_file(f"d/t.{kind}", blob)
    store = connect()
    entry = store.resolve(f"d/t.{kind}")
    emulator.faults.throttle(per_connection=8 * MiB)
    cut: list[tuple[int, int]] = []

    def when(offset, n):
        if not cut and passes and offset >= len(blob) // 2:  # the streams' bytes
            cut.extend(_retire_one(passes[0]))

    _hook_pwrite(monkeypatch, when)
    dest = tmp_path / "data"
    dest.mkdir()
    target = str(dest / f"t.{kind}")
    unpacking = Unpacking(store, entry, target, str(dest), extract=True, jobs=2,
                          chunk_size=None, progress=None, describe=f"drive:d/t.{kind}",
                          reserve=0, lock_dir=None)
    try:
        assert unpacking.follower is not None
        res = unpacking.download()
        result = unpacking.extract(target)
    finally:
        unpacking.close()
    assert len(cut) == 1 and res.fetched + res.resumed_from == len(blob)
    assert hashlib.md5(open(target, "rb").read()).hexdigest() == entry.md5
    assert sorted(result.paths) == sorted(members)
    for name, body in members.items():
        assert (dest / name).read_bytes() == body


# ------------------------------------------------------------------------------ cpuload

@pytest.mark.parametrize("line", [b"cpu  10 0 5 100\n", b"cpu 10 0 5\n", b"cpu a b c d e\n",
                                  b"intr 1 2 3 4 5 6\n", b""])
def test_a_proc_stat_of_another_shape_means_unknown_not_a_crash(tmp_path, monkeypatch, line):
    """Old kernels (before 2.5.41) and some emulated /proc (WSL 1, sandboxes) give fewer
    columns than user..steal: the load is then unknown (the throughput alone decides), and
    the download goes on; it crashed with an IndexError before."""
    stat = tmp_path / "stat"
    stat.write_bytes(line + b"cpu0 1 2 3 4\n")
    monkeypatch.setattr(cpuload, "_STAT", str(stat))
    got = cpuload.sample()
    if line.startswith(b"cpu  10 0 5 100"):
        assert got == (15, 115)  # user + nice + system busy, idle 100, no iowait column
    else:
        assert got is None
    assert cpuload.busy(got, got) is None


def test_a_download_measuring_streams_on_a_four_column_proc_stat_completes(
        emulator, store, out, small_splits, monkeypatch, tmp_path):
    """The measuring samples the cores' load at every window: a /proc/stat whose cpu line
    has only user, nice, system and idle failed the whole download with an IndexError."""
    stat = tmp_path / "stat"
    stat.write_bytes(b"cpu  10 0 5 100\ncpu0 10 0 5 100\n")
    monkeypatch.setattr(cpuload, "_STAT", str(stat))
    data = os.urandom(2 * MiB)
    emulator.add_file("p.bin", data)
    entry = store.resolve("p.bin")
    emulator.faults.throttle(per_connection=8 * MiB)  # a few windows long
    res = dl.download(store, entry, str(out / "p.bin"))
    assert open(out / "p.bin", "rb").read() == data and res.md5 == entry.md5


# ------------------------------------------------------------------------ the hash's bounds

def _download_in_a_thread(store, entry, target, **kw):
    """``dl.download`` in a thread: (the thread, {"result" or "error": ...})."""
    box: dict = {}

    def go():
        try:
            box["result"] = dl.download(store, entry, target, **kw)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, box


def _hook_preadv(monkeypatch, fail):
    """The hash's read-back of the partial goes through ``fail(fd, offset)`` first."""
    real = os.preadv

    def preadv(fd, buffers, offset):
        fail(fd, offset)
        return real(fd, buffers, offset)

    names = {k: getattr(prefix_hash.os, k) for k in dir(prefix_hash.os) if not k.startswith("__")}
    monkeypatch.setattr(prefix_hash, "os", types.SimpleNamespace(**{**names, "preadv": preadv}))


def test_a_read_error_in_the_hash_fails_the_download_instead_of_hanging(
        emulator, store, out, small_splits, monkeypatch):
    """The hash reads back what the stream ahead wrote (a Drive FUSE mount, a failing disk:
    EIO). Its thread died with the error and the download waited for its digest for ever;
    now the download fails with a line naming the partial file, which stays for a rerun."""
    data = os.urandom(4 * MiB)
    emulator.add_file("e.bin", data)
    entry = store.resolve("e.bin")
    emulator.faults.throttle(per_connection=16 * MiB)

    def fail(fd, offset):
        raise OSError(5, "Input/output error")

    _hook_preadv(monkeypatch, fail)
    target = str(out / "e.bin")
    t, box = _download_in_a_thread(store, entry, target, jobs=2)
    t.join(20)
    assert not t.is_alive(), "the download hangs after the hash failed"
    err = box.get("error")
    assert err is not None and "Input/output error" in str(err), box
    assert dl.partial_path(target, entry) in str(err)
    assert os.path.exists(dl.partial_path(target, entry))


def test_a_partial_truncated_by_another_program_fails_the_download_instead_of_spinning(
        emulator, store, out, small_splits, passes, monkeypatch):
    """Another program truncates the partial once every byte was written, before the hash
    read them back: the read-back found no bytes where the record says some were written,
    and went round that loop for ever at full CPU. Now the download fails and says what
    happened (a truncation while streams still write leaves zeros, which the checksum
    catches: the download starts again)."""
    data = os.urandom(4 * MiB)
    emulator.add_file("t.bin", data)
    entry = store.resolve("t.bin")
    emulator.faults.throttle(per_connection=16 * MiB)
    target = str(out / "t.bin")
    done: list[int] = []

    def fail(fd, offset):
        if not done:  # the adversary acts right before the first read-back
            done.append(offset)
            run = passes[0]
            with run.lock:  # once every byte is written (the hash waits meanwhile)
                while run.done.total() < len(data) and run.error is None:
                    run.lock.wait(0.5)
            os.truncate(dl.partial_path(target, entry), offset)

    _hook_preadv(monkeypatch, fail)
    t, box = _download_in_a_thread(store, entry, target, jobs=2)
    t.join(20)
    assert not t.is_alive(), "the download spins after the partial was truncated"
    err = box.get("error")
    assert err is not None and "shorter" in str(err) and dl.partial_path(target, entry) \
        in str(err), box


def test_a_source_file_that_got_shorter_fails_the_download_instead_of_asking_for_ever(
        tmp_path, small_splits):
    """pull from a folder store (a Drive FUSE mount, a NAS) of a file that another program
    truncates after it was listed: every read of the rest ended at once with nothing, the
    rest went back to the ranges to fetch and the stream asked again, for good (a busy
    loop). Now the download fails with a line that says the file changed."""
    from drivestage.localdir import LocalDirStore

    root = tmp_path / "root"
    root.mkdir()
    data = os.urandom(2 * MiB)
    (root / "x.bin").write_bytes(data)
    store = LocalDirStore(root)
    entry = store.resolve("x.bin")
    (root / "x.bin").write_bytes(data[:MiB])  # the other program, after the listing
    out = tmp_path / "out"
    out.mkdir()
    t, box = _download_in_a_thread(store, entry, str(out / "x.bin"), jobs=1)
    t.join(20)
    assert not t.is_alive(), "the download asks for the missing bytes for ever"
    err = box.get("error")
    assert isinstance(err, RemoteError) and "changed" in str(err), box
    assert "x.bin" in str(err) and str(MiB) in str(err)


_KILLED_CHILD = r"""
import os, signal, sys
from drivestage import download as dl, streams
from drivestage.drive import connect

streams._MIN_SPLIT, streams._SPLIT_SECONDS, streams._ADAPT_FROM = 64 * 1024, 0.0, 256 * 1024
store = connect()
entry = store.resolve("k.bin")
size, runs, cut = entry.size, [], []
begin, real = streams.Pass.begin, os.pwrite

def pass_begin(self):
    runs.append(self)
    begin(self)

def pwrite(fd, data, offset):
    run = runs[0]
    if not cut and offset >= size // 2:
        with run.lock:  # the measuring stops the stream ahead here
            run._retire(1)
            cut.extend((p.pos, p.end) for p in run.pieces if p.retired)
        print(cut[0][0], flush=True)
    elif cut and offset < size // 2 and offset >= size // 4:
        n = real(fd, data, offset)  # a block of the front stream lands, then the kill
        with run.lock:
            run.done.save()
        os.kill(os.getpid(), signal.SIGKILL)
    return real(fd, data, offset)

streams.Pass.begin = pass_begin
streams.os = type("os", (), {**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")},
                             "pwrite": staticmethod(pwrite)})
dl.download(store, entry, sys.argv[1], jobs=2)
"""


def test_a_kill_right_after_a_retirement_leaves_a_record_the_rerun_trusts(
        emulator, drive_env, tmp_path):
    """SIGKILL just after the stream ahead was stopped (its rest back in the ranges to
    fetch, the front stream still writing): the record on disk names only bytes that are
    there; the rerun asks only for the missing ones and the file verifies."""
    from _forkcli import cli_server

    data = os.urandom(4 * MiB)
    fid = emulator.add_file("k.bin", data)
    store = connect()
    entry = store.resolve("k.bin")
    emulator.faults.throttle(per_connection=8 * MiB)
    target = str(tmp_path / "k.bin")
    env = dict(os.environ, **drive_env, DRIVESTAGE_RETRY_BASE="0.001",
               DRIVESTAGE_RETRY_JITTER="0")
    # (forked with drivestage imported, tests/_forkcli.py: not a fresh interpreter)
    child = cli_server().run([target], script=_KILLED_CHILD, env=env, timeout=60)
    assert child.returncode == -9, child.stderr.decode()
    cut_at = int(child.stdout.split()[0])
    partial = dl.partial_path(target, entry)
    with open(dl.ranges_path(partial)) as fh:
        recorded = json.load(fh)["done"]
    with open(partial, "rb") as fh:
        for a, b in recorded:
            fh.seek(a)
            assert fh.read(b - a) == data[a:b]
    assert all(b <= cut_at or a >= len(data) for a, b in recorded[1:]), (recorded, cut_at)
    emulator.faults.clear()
    emulator.clear_requests()
    kept = sum(b - a for a, b in recorded)
    res = dl.download(store, entry, target, jobs=2)
    assert open(target, "rb").read() == data and res.md5 == entry.md5
    assert (res.resumed_from, res.fetched) == (kept, len(data) - kept)
    assert not any(a <= s < b for s, _ in _ranges(emulator, fid) for a, b in recorded)


def test_a_stopped_stream_waiting_out_a_retry_does_not_hold_the_finished_download(
        emulator, store, out, small_splits, passes, monkeypatch):
    """The stream ahead is stopped while it waits out a backoff (Drive's Retry-After on a
    429 can be two minutes): the first stream fetches its rest, and the download is done
    then, not once the stopped stream wakes to find it has nothing left to read."""
    from drivestage.drive import retry

    data = os.urandom(4 * MiB)
    emulator.add_file("b.bin", data)
    entry = store.resolve("b.bin")
    emulator.faults.throttle(per_connection=8 * MiB)
    emulator.faults.drop("GET", r"alt=media", after_bytes=300_000, times=2)
    mine = _pieces_written(monkeypatch)
    cut: list = []
    real_sleep = retry._sleep

    def sleep(seconds):
        piece = getattr(mine, "piece", None)
        if piece is not None and passes and not cut:
            run = passes[0]
            with run.lock:
                ahead = len(run.pieces) == 2 and piece is max(run.pieces, key=lambda p: p.pos)
                if ahead:
                    cut.extend(_retire_one(run))
            if ahead:
                # The server's Retry-After, longer than the test: the real wait, which only
                # the pass's close (its cut of the streams' lines) ends; a wait no cut
                # reaches would now hold that close (it joins the streams) for its bound.
                real_sleep(60)
                return
        real_sleep(seconds)

    monkeypatch.setattr(retry, "_sleep", sleep)
    t, box = _download_in_a_thread(store, entry, str(out / "b.bin"), jobs=2)
    t.join(15)
    assert not t.is_alive(), "the download waits for the stopped stream's backoff"
    assert len(cut) == 1 and "result" in box, box
    assert open(out / "b.bin", "rb").read() == data and box["result"].fetched == len(data)
