"""Attacks on a mirror that lives for hours: what an idle period costs (requests, local work),
what grows over many periods, and how it comes back after Drive misbehaved for a while.

Each test drives the real PyDrive2 stack against the emulator and counts what was done
(requests in ``emu.requests``, names examined, entries kept), never wall-clock time."""
from __future__ import annotations

import os

import pytest

from drivestage import sidecar
from drivestage.mirror import Mirror
from tests.test_leasefull42_dedupe_mirror import until_claims


def _names_examined(monkeypatch) -> list[int]:
    """Counts the names every :func:`drivestage.sidecar.pairs` call is handed (its work)."""
    seen: list[int] = []
    real = sidecar.pairs

    def counting(names):
        names = list(names)
        seen.append(len(names))
        return real(names)
    monkeypatch.setattr(sidecar, "pairs", counting)
    return seen


def _folder_of(tmp_path, emulator, n: int, *, on_drive: str, suffix: str = ".txt") -> str:
    """``n`` files in a local folder; on Drive at runs/logs: the same (``"same"``), other
    bytes of one size (``"changed"``) or nothing (``""``)."""
    src = tmp_path / "logs"
    src.mkdir()
    for i in range(n):
        (src / f"pred_{i:04d}{suffix}").write_bytes(b"%04d" % i)
        if on_drive:
            emulator.add_file(f"runs/logs/pred_{i:04d}{suffix}",
                              b"%04d" % (i if on_drive == "same" else n + i))
    return str(src)


# --- 1. an idle period of a folder with many files ----------------------------------------

@pytest.mark.parametrize("on_drive,suffix", [("same", ".txt"), ("changed", ".txt"),
                                             ("changed", ".pt"), ("", ".txt")],
                         ids=["idle", "all-changed", "all-changed-checkpoints", "first-push"])
def test_a_period_of_a_folder_with_many_files_examines_each_name_a_few_times(
        emulator, store, tmp_path, monkeypatch, on_drive, suffix):
    """A logs folder with 5,000 files (per-image predictions, event files): every period of
    the mirror, idle or not, looked up each file's sidecar among all the folder's names, one
    file at a time (other_runs._further_on): 45 s of CPU per idle period at 5,000 files,
    quadratic (8 s at 1,000), on the machine that trains. Each name must be examined a
    bounded number of times per period."""
    n = 120
    src = _folder_of(tmp_path, emulator, n, on_drive=on_drive, suffix=suffix)
    m = Mirror(src, (store, "runs/logs"), None).start()
    try:
        seen = _names_examined(monkeypatch)
        first = m.flush(60)
        examined = sum(seen)
        # (the mirror's claim on DEST, written by a thread of its own: mirrorclaim43)
        until_claims(emulator, lambda found: len(found) == 1, "the mirror never claimed")
        before = len(emulator.requests)
        result = m.flush(60)
        examined_idle = sum(seen) - examined
        requests = emulator.requests[before:]
    finally:
        m.stop(60)
    assert first is not None and len(first.uploaded) == (0 if on_drive == "same" else n)
    assert result is not None and result.unchanged == n and not result.uploaded
    for work in (examined, examined_idle):
        assert work <= 4 * n, f"{len(seen)} lookups over {work} names for {n} files"
    # An idle period: the folder's id checked once, one listing of its one page.
    assert sorted(r.kind for r in requests) == ["files.get", "files.list"], \
        [(r.kind, r.query) for r in requests]


# --- 2. DEST changed on Drive between two periods -----------------------------------------

def _dest_changed(emulator, how: str) -> None:
    """What the user did to runs/logs on Drive between two periods."""
    store, old = emulator.store, emulator.find("runs/logs")["id"]
    if how == "trashed":
        store.set_trashed(old, True)
    elif how == "deleted":
        store.delete(old)
    elif how == "renamed":             # kept aside as logs_old; the path is free again
        store.update_meta(old, {"title": "logs_old"})
    elif how == "moved":               # into an archive folder elsewhere
        archive = emulator.add_folder("archive")
        store.update_meta(old, {}, add_parents=[archive], remove_parents=[emulator.find("runs")["id"]])
    elif how == "replaced":            # renamed aside, and a new runs/logs made in its place
        store.update_meta(old, {"title": "logs_old"})
        emulator.add_folder("runs/logs")
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["trashed", "deleted", "renamed", "moved", "replaced"])
def test_dest_changed_between_periods_the_next_period_pushes_to_the_path(
        emulator, store, tmp_path, how):
    """The mirror keeps DEST's folder id from one period to the next. The user trashed,
    deleted, renamed or moved that folder on Drive meanwhile (or put a new one of its name in
    its place): the next period must push into the folder the path leads to now, as a fresh
    process (a resume) will read it, not into the old folder wherever it went."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"one")
    m = Mirror(str(src), (store, "runs/logs"), None).start()
    try:
        m.flush(60)
        _dest_changed(emulator, how)
        (src / "epoch_002.pt").write_bytes(b"two")
        m.flush(60)
    finally:
        m.stop(60)
    from _drive_state import live_md5s
    import hashlib
    assert live_md5s(emulator, "runs/logs") == {
        n: [hashlib.md5(d).hexdigest()] for n, d in
        {"epoch_001.pt": b"one", "epoch_002.pt": b"two"}.items()}


# --- 3. local state over many periods ---------------------------------------------------------

def _md5_cache_entries(env) -> dict:
    import json

    return json.loads((env / "state" / "md5-cache.json").read_text())


def test_the_md5_cache_forgets_files_gone_from_the_disk(emulator, store, env, tmp_path):
    """The md5 cache (DRIVESTAGE_STATE_DIR/md5-cache.json, kept across runs) gained one entry
    per file name ever pushed and lost none: a trainer's autosave_<iteration>.pt is a new
    name at every save (the older ones deleted locally), so every period that sent one added
    an entry, for ever, run after run on that machine, and every save read and rewrote the
    whole file (400 periods: 401 entries for 2 live files). Entries of files gone from the
    disk must go: the cache stays within a bound of the files that exist."""
    import json

    # What earlier runs on this machine left: 3,000 files hashed, long deleted.
    (env / "state").mkdir(exist_ok=True)
    gone = {str(tmp_path / "old-run" / f"autosave_{i:08d}.pt"): [100, i, "0" * 32]
            for i in range(3000)}
    (env / "state" / "md5-cache.json").write_text(json.dumps(gone))
    src = tmp_path / "logs"
    src.mkdir()
    m = Mirror(str(src), (store, "runs/logs"), None).start()
    try:
        for i in range(1, 4):          # three periods, each with a new autosave
            for old in src.glob("autosave_*.pt"):
                old.unlink()
            (src / f"autosave_{i:08d}.pt").write_bytes(b"state %d" % i)
            m.flush(60)
    finally:
        m.stop(60)
    kept = _md5_cache_entries(env)
    assert str(src / "autosave_00000003.pt") in kept
    assert len(kept) <= 2 * 1 + 256, f"{len(kept)} entries for 1 file on the disk"


# --- 4. a log appended to while every period uploads it -------------------------------------


def test_a_log_appended_to_during_every_upload_reaches_drive_and_the_period_goes_on(
        emulator, proxy, env, tmp_path, fast_retries):
    """``tee logs/train.log`` while `drivestage mirror logs/ ...` runs: the log grows while
    each period uploads it. Each period sent it three times, then failed ("kept changing
    while it was uploaded ... write checkpoints to a temporary name"): the log never
    reached Drive while the run lasted (its half-written copy removed), every period logged
    an error, and its retention never ran. A log that keeps changing is sent as it was at
    one moment (a private copy: md5-verified); the period succeeds and prunes. Checkpoints
    are never sent so (a copy of a half-written one would be no checkpoint)."""
    from drivestage.drive import connect
    from drivestage.retention import RetentionPolicy
    from _proxy import Reply

    src = tmp_path / "logs"
    src.mkdir()
    log = src / "train.log"
    log.write_bytes(b"start\n")

    def appended(status: int, headers: dict, body: bytes) -> Reply:
        with open(log, "ab") as fh:   # the writer goes on, at every request of an upload
            fh.write(b"step\n")
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", appended)
    proxy.on("POST", r"^/upload/", appended)
    store = connect(api_root=proxy.url, token="test-token")
    m = Mirror(str(src), (store, "runs/logs"), RetentionPolicy(keep_last=1)).start()
    try:
        for epoch in (1, 2):
            (src / f"epoch_{epoch:03d}.pt").write_bytes(b"weights %d" % epoch)
            result = m.flush(60)
            assert result is not None and "train.log" in result.uploaded
        uploads = sum(1 for method, path in proxy.requests if path.startswith("/upload/"))
    finally:
        m.stop(60)
    from _drive_state import live_md5s
    on_drive = emulator.read_bytes(emulator.find("runs/logs/train.log")["id"])
    assert on_drive.startswith(b"start\n") and log.read_bytes().startswith(on_drive)
    assert set(live_md5s(emulator, "runs/logs")) == {"train.log", "epoch_002.pt"}
    # Per period: the checkpoint (2 requests), the log three times as it changed, then its copy.
    assert uploads <= 2 * 10, f"{uploads} upload requests over 2 periods"


@pytest.mark.parametrize("name", ["last.pt", "model.bin"])
def test_a_checkpoint_written_during_every_upload_is_never_sent_from_a_copy(
        emulator, proxy, env, tmp_path, fast_retries, name):
    """The other side of the test above: a checkpoint (a .pt, or a file with its sidecar)
    still being written while every upload of it runs is no log. A copy of it would be a
    half-written checkpoint on Drive: the period fails as it did, and nothing of it stays."""
    from drivestage.drive import connect
    from drivestage.errors import MirrorError
    from _proxy import Reply

    src = tmp_path / "logs"
    src.mkdir()
    ckpt = src / name
    ckpt.write_bytes(b"weights")
    if name == "model.bin":
        (src / "model.json").write_bytes(b'{"epoch": 1}')

    def written(status: int, headers: dict, body: bytes) -> Reply:
        with open(ckpt, "ab") as fh:
            fh.write(b"more weights")
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", written)
    proxy.on("POST", r"^/upload/", written)
    m = Mirror(str(src), (connect(api_root=proxy.url, token="test-token"), "runs/logs"),
               None).start()
    try:
        with pytest.raises(MirrorError, match="kept changing while it was uploaded"):
            m.flush(60)
    finally:
        proxy.rules.clear()
        m.stop(60)
    assert emulator.find(f"runs/logs/{name}") is not None  # the final push, once it was done
    assert emulator.read_bytes(emulator.find(f"runs/logs/{name}")["id"]) == ckpt.read_bytes()


def test_a_long_lived_store_keeps_nothing_per_file_it_read(emulator, store):
    """The Drive store a mirror keeps for hours remembered the media URI of every file it
    ever read (a sidecar each period, for the checkpoint written each period): ~150 bytes
    more per period, for ever (~730 bytes per period with the strings around it). Reading
    200 files must leave no more than a bounded few behind (before: 35 KB, and growing)."""
    import gc
    import tracemalloc

    for i in range(200):
        emulator.add_file(f"runs/f{i}.json", b"{}")
    entries = store.list(store.resolve("runs"))
    store.fetch_range(entries[0], 0, 2)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for entry in entries:
            assert store.fetch_range(entry, 0, 2) == b"{}"
        gc.collect()
        grown = tracemalloc.take_snapshot().compare_to(before, "lineno")
    finally:
        tracemalloc.stop()
    # (64 of the URIs stay alive in a bounded cache below drivestage: ~10 KiB at any count)
    kept = [d for d in grown if d.traceback[0].filename.endswith("drive/media.py")]
    assert sum(d.size_diff for d in kept) < 16384, [str(d) for d in kept]
