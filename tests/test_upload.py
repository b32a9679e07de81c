"""Uploads: local state (md5 cache, sessions) and resumable, verified uploads over the real stack."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)
from drivestage.localfs import file_md5
from drivestage.state import Md5Cache, UploadSessions, stat_key


def test_md5_cache_hashes_once_and_notices_changes(tmp_path):
    f = tmp_path / "ckpt.pt"
    f.write_bytes(b"a" * 1000)
    cache = Md5Cache(tmp_path / "state" / "md5.json")
    assert cache.md5(str(f)) == hashlib.md5(b"a" * 1000).hexdigest()
    cache.save()
    # A new process (new cache object) finds it without hashing.
    again = Md5Cache(tmp_path / "state" / "md5.json")
    assert again.get(str(f)) == hashlib.md5(b"a" * 1000).hexdigest()
    # Same size, new mtime: not trusted.
    f.write_bytes(b"b" * 1000)
    os.utime(f, ns=(1, 1))
    assert again.get(str(f)) is None
    assert again.md5(str(f)) == file_md5(str(f)) == hashlib.md5(b"b" * 1000).hexdigest()


def test_md5_cache_survives_a_damaged_state_file(tmp_path):
    state = tmp_path / "md5.json"
    state.write_text("{not json")
    f = tmp_path / "x"
    f.write_bytes(b"x")
    cache = Md5Cache(state)
    assert cache.md5(str(f)) == hashlib.md5(b"x").hexdigest()
    cache.save()
    assert Md5Cache(state).get(str(f)) == hashlib.md5(b"x").hexdigest()


@pytest.mark.parametrize("damaged", ["number", "record", "no md5", "md5 a number"])
def test_md5_cache_survives_a_damaged_entry(tmp_path, damaged):
    # One entry edited by hand: it costs a hash of that file, nothing else.
    f = tmp_path / "x"
    f.write_bytes(b"x")
    key = stat_key(os.stat(f))
    entry = {"number": 5, "record": {"size": 1}, "no md5": key, "md5 a number": key + [7]}
    state = tmp_path / "md5.json"
    state.write_text(json.dumps({str(f): entry[damaged]}))
    cache = Md5Cache(state)
    assert cache.md5(str(f)) == hashlib.md5(b"x").hexdigest()
    cache.save()
    assert Md5Cache(state).get(str(f)) == hashlib.md5(b"x").hexdigest()


def test_sessions_persist_and_merge_between_writers(tmp_path):
    path = tmp_path / "sessions.json"
    a, b = UploadSessions(path), UploadSessions(path)
    a.put("k1", {"uri": "http://x/1"})
    b.put("k2", {"uri": "http://x/2"})        # b did not read k1 first: still kept
    assert set(json.loads(path.read_text())) == {"k1", "k2"}
    assert UploadSessions(path).get("k1") == {"uri": "http://x/1"}
    a.drop("k1")
    assert json.loads(path.read_text()) == {"k2": {"uri": "http://x/2"}}
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


_HOLDER = """
import sys
from drivestage.state import UploadSessions
with UploadSessions(sys.argv[1]).claimed("k", lambda r: True) as name:
    print(name, flush=True)
    sys.stdin.read()  # held until the test kills it
"""


def test_session_records_are_held_by_one_upload_at_a_time_until_it_ends(tmp_path):
    # What keeps two uploads of one file to one place apart: each holds its own record while
    # it runs, other threads and processes get a sibling, and a killed holder's record is
    # free again (the next upload resumes its session).
    from drivestage.state import SESSION_SLOTS

    path = tmp_path / "sessions.json"
    UploadSessions(path).put("k#2", {"uri": "http://x/2", "size": 1})
    holder = cli_server().popen([str(path)], script=_HOLDER, text=True, stdin=PIPE,
                                stdout=PIPE)
    try:
        assert holder.stdout.readline().strip() == "k#2"   # the one whose session fits
        sessions = UploadSessions(path)
        with sessions.claimed("k", lambda r: True) as mine:
            assert mine == "k"
            with sessions.claimed("k", lambda r: True) as other:  # another thread's
                assert other == "k#1"
                with sessions.claimed("k", lambda r: True) as third:
                    assert third == "k#3" and SESSION_SLOTS == 4
                    with sessions.claimed("k", lambda r: True) as none:
                        assert none is None                     # not saved
        holder.kill()
        holder.wait(10)
        with sessions.claimed("k", lambda r: r.get("size") == 1) as after:
            assert after == "k#2"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


# --------------------------------------------------------------------------- the real stack

import threading
import sys
import textwrap
import time

from _kill import sigkill_when

from drivestage.errors import (ChecksumMismatchError, DailyUploadCapError, QuotaExceededError,
                               ServiceAccountStorageError, UsageError)
from drivestage.drive.upload import CHUNK_UNIT

CHUNK = CHUNK_UNIT  # 256 KiB chunks keep the tests small and multi-chunk


@pytest.fixture
def env(local_state, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "6")
    return local_state


def _file(tmp_path, name, size, seed=0):
    import random

    data = random.Random(seed).randbytes(size)
    path = tmp_path / name
    path.write_bytes(data)
    return str(path), data


def _uploads(emu):
    return [r for r in emu.requests if r.path.startswith("/upload/")]


def _chunk_puts(emu):
    """Requests that carry content (or ask for the status) of a session."""
    return [r for r in _uploads(emu) if r.method == "PUT" and "upload_id" in r.query]


def _named(emu, name):
    return [f for f in emu.files() if f["title"] == name and not f["labels"]["trashed"]]


def test_upload_then_replace_keeps_the_id(emulator, store, tmp_path):
    folder = store.make_folders("Models/logs")
    path, data = _file(tmp_path, "last.pt", 3 * CHUNK + 17)
    entry = store.upload(path, folder, "last.pt", chunk_size=CHUNK)
    assert entry.md5 == hashlib.md5(data).hexdigest() and entry.size == len(data)
    assert emulator.read_bytes(entry.id) == data
    path, data2 = _file(tmp_path, "last.pt", 2 * CHUNK + 5, seed=1)
    again = store.upload(path, folder, "last.pt", replace=entry, chunk_size=CHUNK)
    assert again.id == entry.id
    assert emulator.read_bytes(entry.id) == data2
    assert len(_named(emulator, "last.pt")) == 1
    # 4 chunks then 3 chunks, one PUT each
    assert len(_chunk_puts(emulator)) == 7


def test_empty_file(emulator, store, tmp_path):
    folder = store.make_folders("x")
    path, _ = _file(tmp_path, "empty", 0)
    entry = store.upload(path, folder, "empty")
    assert entry.size == 0 and entry.md5 == hashlib.md5(b"").hexdigest()


def test_chunk_size_must_be_a_multiple_of_256k(store, tmp_path):
    folder = store.make_folders("x")
    path, _ = _file(tmp_path, "a", 10)
    with pytest.raises(UsageError, match="256 KiB"):
        store.upload(path, folder, "a", chunk_size=1000)


@pytest.mark.parametrize("fault", ["429", "503", "reset-request", "reset-response"])
def test_faults_during_upload_still_give_one_correct_file(emulator, store, tmp_path, fault):
    folder = store.make_folders("x")
    path, data = _file(tmp_path, "ckpt.pt", 4 * CHUNK + 3)
    chunk_put = r"^/upload/drive/v2/files.*upload_id="
    if fault == "429":
        emulator.faults.inject("PUT", chunk_put, status=429, reason="rateLimitExceeded", times=2)
    elif fault == "503":
        emulator.faults.inject("PUT", chunk_put, status=503, reason="backendError", times=2)
    elif fault == "reset-request":
        emulator.faults.drop("PUT", chunk_put, after_bytes=CHUNK // 2, direction="request")
    else:
        emulator.faults.drop("PUT", chunk_put, after_bytes=0, direction="response")
    entry = store.upload(path, folder, "ckpt.pt", chunk_size=CHUNK)
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert emulator.read_bytes(entry.id) == data
    assert len(_named(emulator, "ckpt.pt")) == 1
    sent = sum(r.bytes_in for r in _chunk_puts(emulator))
    assert sent <= len(data) + CHUNK  # at most the interrupted chunk went twice


def test_corrupted_upload_is_detected_and_sent_again(emulator, store, tmp_path):
    folder = store.make_folders("x")
    path, data = _file(tmp_path, "a.pt", CHUNK + 1)
    emulator.faults.corrupt_upload(times=1)
    entry = store.upload(path, folder, "a.pt", chunk_size=CHUNK)
    assert emulator.read_bytes(entry.id) == data
    assert [f["id"] for f in _named(emulator, "a.pt")] == [entry.id]


def test_corruption_twice_is_an_error_and_leaves_no_bad_copy(emulator, store, tmp_path):
    folder = store.make_folders("x")
    path, data = _file(tmp_path, "a.pt", CHUNK + 1)
    emulator.faults.corrupt_upload(times=2)
    with pytest.raises(ChecksumMismatchError, match="does not match") as info:
        store.upload(path, folder, "a.pt", chunk_size=CHUNK)
    assert info.value.expected == hashlib.md5(data).hexdigest()
    assert _named(emulator, "a.pt") == []


def test_file_modified_during_upload_is_sent_again(emulator, store, tmp_path):
    folder = store.make_folders("x")
    path, data = _file(tmp_path, "a.pt", 4 * CHUNK)
    final = bytes(reversed(data))
    calls = []

    def rewrite_once(n):
        # The writer replaces the file while the first chunks are on the wire.
        calls.append(n)
        if len(calls) == 1:
            with open(path, "r+b") as fh:
                fh.write(final)
            os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))

    entry = store.upload(path, folder, "a.pt", chunk_size=CHUNK, progress=rewrite_once)
    assert emulator.read_bytes(entry.id) == final
    assert entry.md5 == hashlib.md5(final).hexdigest()
    assert len(_named(emulator, "a.pt")) == 1


def test_file_replaced_atomically_during_upload_sends_the_whole_old_version(emulator, store,
                                                                             tmp_path, caplog):
    # A writer that renames a new version into place never yields a half-written mirror:
    # the bytes already opened are sent whole, with no "changed" retry; the next push
    # sends the new version.
    folder = store.make_folders("x")
    path, data = _file(tmp_path, "results.csv", 4 * CHUNK)
    final = bytes(reversed(data))
    calls = []

    def replace_once(n):
        calls.append(n)
        if len(calls) == 1:
            tmp = tmp_path / ".results.csv.tmp"
            tmp.write_bytes(final)
            os.replace(tmp, path)

    with caplog.at_level("WARNING", logger="drivestage"):
        entry = store.upload(path, folder, "results.csv", chunk_size=CHUNK,
                            progress=replace_once)
    assert emulator.read_bytes(entry.id) == data
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert "changed while it was uploaded" not in caplog.text
    again = store.upload(path, folder, "results.csv", replace=entry, chunk_size=CHUNK)
    assert again.id == entry.id and emulator.read_bytes(entry.id) == final
    assert len(_named(emulator, "results.csv")) == 1


def test_quota_too_small_fails_before_a_byte_with_the_numbers(emulator_factory, env, tmp_path):
    from drivestage.drive import connect

    emu = emulator_factory(quota_bytes=CHUNK)
    small = connect(api_root=emu.url, token="t")
    folder = small.make_folders("x")
    path, _ = _file(tmp_path, "big.pt", 2 * CHUNK)
    with pytest.raises(QuotaExceededError) as info:
        small.upload(path, folder, "big.pt", chunk_size=CHUNK)
    msg = str(info.value)
    assert "needed 512.0 KiB" in msg and "free" in msg
    assert info.value.needed == 2 * CHUNK and info.value.free == CHUNK
    assert sum(r.bytes_in for r in _chunk_puts(emu)) == 0


def test_service_account_gets_the_shared_drive_advice(emulator, store, tmp_path):
    emulator.set_service_account(True, token="test-token")
    folder = store.make_folders("x")
    path, _ = _file(tmp_path, "a.pt", 10)
    with pytest.raises(ServiceAccountStorageError, match="shared drive"):
        store.upload(path, folder, "a.pt")


def test_persistent_user_rate_limit_is_the_daily_cap(emulator, store, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    folder = store.make_folders("x")
    path, _ = _file(tmp_path, "a.pt", 2 * CHUNK)
    emulator.faults.inject("PUT", r"upload_id=", status=403, reason="userRateLimitExceeded",
                           message="User rate limit exceeded.", times=None)
    with pytest.raises(DailyUploadCapError, match="750 GB"):
        store.upload(path, folder, "a.pt", chunk_size=CHUNK)


_CHILD = textwrap.dedent("""
    import sys
    from drivestage.drive import connect
    store = connect(api_root=sys.argv[1], token="test-token")
    folder = store.make_folders("Models/logs")
    store.upload(sys.argv[2], folder, "big.pt", chunk_size=int(sys.argv[3]))
    print("finished")
""")


@pytest.mark.slow
def test_sigkill_mid_upload_resumes_the_same_session(emulator, store, env, tmp_path):
    path, data = _file(tmp_path, "big.pt", 12 * CHUNK + 99)
    emulator.faults.throttle(4 * CHUNK)   # about 3 s in all: time to kill it mid-way
    child = cli_server().popen([emulator.url, path, str(CHUNK)], script=_CHILD,
                               env={**os.environ}, stdout=PIPE, stderr=PIPE)
    sigkill_when(child, lambda: sum(1 for r in _uploads(emulator) if r.status == 308) >= 3,
                 "three chunks were never committed")
    emulator.faults.throttle(None)
    first_run = sum(r.bytes_in for r in _chunk_puts(emulator))
    assert _named(emulator, "big.pt") == []          # the session never completed
    emulator.clear_requests()

    folder = store.make_folders("Models/logs")
    entry = store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    puts = _chunk_puts(emulator)
    # (the killed child's in-flight chunk may be logged after clear_requests: skip it)
    status = [i for i, r in enumerate(puts)
              if r.headers.get("Content-Range") == f"bytes */{len(data)}"]
    assert status, "the rerun must ask the server for the committed offset"
    assert not [r for r in _uploads(emulator) if r.method == "POST"]        # same session
    resent = sum(r.bytes_in for r in puts[status[0] + 1:])
    assert resent <= len(data) - 3 * CHUNK
    assert first_run + sum(r.bytes_in for r in puts) <= len(data) + 2 * CHUNK
    assert [f["id"] for f in _named(emulator, "big.pt")] == [entry.id]
    assert entry.md5 == hashlib.md5(data).hexdigest() == emulator.find("Models/logs/big.pt")["md5Checksum"]


def test_quota_exceeded_mid_upload_gives_the_quota_error(emulator_factory, env, tmp_path):
    from drivestage.drive import connect
    emu = emulator_factory(quota_bytes=4 * CHUNK)
    small = connect(api_root=emu.url, token="t")
    folder = small.make_folders("x")
    path, _ = _file(tmp_path, "a.pt", 3 * CHUNK)
    # Another client fills the drive while our upload is under way.
    fill = lambda n: emu.find("other.bin") or emu.add_file("other.bin", b"z" * 2 * CHUNK)
    with pytest.raises(QuotaExceededError) as info:
        small.upload(path, folder, "a.pt", chunk_size=CHUNK, progress=fill)
    assert info.value.needed == 3 * CHUNK and info.value.free == 2 * CHUNK
    assert "free 512.0 KiB" in str(info.value)
    assert _named(emu, "a.pt") == []


def test_an_expired_session_is_replaced_by_a_new_one(emulator, store, env, tmp_path):
    folder = store.make_folders("x")
    path, data = _file(tmp_path, "a.pt", 2 * CHUNK + 1)
    sessions = UploadSessions()
    st = os.stat(path)
    sessions.put(UploadSessions.key(path, folder, "a.pt", None),
                 {"uri": emulator.url + "upload/drive/v2/files?uploadType=resumable&upload_id=gone",
                  "size": st.st_size, "mtime_ns": st.st_mtime_ns, "created": time.time()})
    entry = store.upload(path, folder, "a.pt", chunk_size=CHUNK)
    assert emulator.read_bytes(entry.id) == data
    assert json.loads((env / "state" / "upload-sessions.json").read_text()) == {}


def test_a_session_lost_mid_upload_restarts_once(emulator, store, env, tmp_path):
    folder = store.make_folders("x")
    path, data = _file(tmp_path, "a.pt", 3 * CHUNK)
    emulator.faults.inject("PUT", r"upload_id=", status=404, reason="notFound", times=1)
    entry = store.upload(path, folder, "a.pt", chunk_size=CHUNK)
    assert emulator.read_bytes(entry.id) == data
    assert len(_named(emulator, "a.pt")) == 1
    assert len([r for r in _uploads(emulator) if r.method == "POST"]) == 2


def test_memory_does_not_grow_with_the_chunk_size(emulator, store, tmp_path):
    import tracemalloc

    folder = store.make_folders("x")
    path, data = _file(tmp_path, "big.pt", 16 * 1024 * 1024)
    tracemalloc.start()
    try:
        entry = store.upload(path, folder, "big.pt", chunk_size=64 * CHUNK)  # one 16 MiB chunk
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert peak < 10 * 1024 * 1024, f"peak {peak} bytes for a 16 MiB chunk"


# ------------------------------------------------ a saved session on another server is not used

import shutil


def _cut_after_three_chunks(store, path, folder, name):
    """An upload interrupted mid-way, as a Ctrl-C would: its session stays saved."""
    sent = []

    def cut(n):
        sent.append(n)
        if len(sent) == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        store.upload(path, folder, name, chunk_size=CHUNK, progress=cut)
    saved = list(UploadSessions()._file.read().values())
    assert len(saved) == 1
    return saved[0]["uri"]


def test_a_session_saved_before_the_server_moved_is_started_afresh(emulator_factory, env,
                                                                    tmp_path):
    # The emulator restarted on another port with the same data (same ids): the session
    # saved before points at the old address, where nothing answers any more.
    from drivestage.drive import connect

    data_dir = str(tmp_path / "drive")
    path, data = _file(tmp_path, "big.pt", 6 * CHUNK + 7)
    before = emulator_factory(data_dir=data_dir)
    folder = connect(api_root=before.url, token="t").make_folders("Models/logs")
    old_uri = _cut_after_three_chunks(connect(api_root=before.url, token="t"), path, folder,
                                      "big.pt")
    assert old_uri.startswith(before.url)
    before.stop()
    after = emulator_factory(data_dir=data_dir)
    assert after.url != before.url
    store = connect(api_root=after.url, token="t")
    folder = store.make_folders("Models/logs")
    entry = store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert after.find("Models/logs/big.pt")["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert [f["id"] for f in _named(after, "big.pt")] == [entry.id]
    assert json.loads((env / "state" / "upload-sessions.json").read_text()) == {}


def test_a_session_saved_on_another_server_never_gets_the_bytes(emulator_factory, env,
                                                                tmp_path):
    # Two servers with the same ids (copies of one Drive), both up. A push to the first was
    # cut; the next push goes to the second: the session saved on the first must not be
    # resumed there, or the file's bytes would go to a server the push was not pointed at.
    from drivestage.drive import connect

    seed = emulator_factory(data_dir=str(tmp_path / "one"))
    folder = connect(api_root=seed.url, token="t").make_folders("Models/logs")
    seed.stop()
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    other = emulator_factory(data_dir=str(tmp_path / "one"))
    current = emulator_factory(data_dir=str(tmp_path / "two"))
    path, data = _file(tmp_path, "big.pt", 6 * CHUNK + 7)
    old_uri = _cut_after_three_chunks(connect(api_root=other.url, token="t"), path, folder,
                                      "big.pt")
    assert old_uri.startswith(other.url)
    other.clear_requests()

    store = connect(api_root=current.url, token="t")
    folder = store.make_folders("Models/logs")
    entry = store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    assert other.requests == []
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert current.find("Models/logs/big.pt")["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert [f["id"] for f in _named(current, "big.pt")] == [entry.id]
    assert _named(other, "big.pt") == []
    assert json.loads((env / "state" / "upload-sessions.json").read_text()) == {}


def test_drives_own_session_addresses_are_on_the_upload_origin():
    # Real Drive answers a session address on https://www.googleapis.com, the origin of the
    # upload URL googleapiclient builds from the discovery document's rootUrl: it is resumed.
    import httplib2
    from googleapiclient.http import MediaInMemoryUpload

    from drivestage.drive.connections import discovery_doc
    from drivestage.drive.services import build_service
    from drivestage.drive.upload import same_origin

    service = build_service(discovery_doc(None), httplib2.Http())
    request = service.files().insert(body={"title": "a"}, media_body=MediaInMemoryUpload(
        b"x", resumable=True))
    drive_session = ("https://www.googleapis.com/upload/drive/v2/files?uploadType=resumable"
                     "&upload_id=ADPycdt1Xw0abc")
    assert same_origin(drive_session, request.uri)
    assert same_origin("HTTPS://WWW.googleapis.com:443/upload/x", request.uri)
    assert not same_origin("http://www.googleapis.com/upload/x", request.uri)
    assert not same_origin("https://www.googleapis.com.evil.example/upload/x", request.uri)
    assert not same_origin("https://www.googleapis.com:8443/upload/x", request.uri)
    assert not same_origin("https://evil.example/upload/x", request.uri)
    assert not same_origin("https://www.googleapis.com@evil.example/upload/x", request.uri)
    assert not same_origin("https://www.googleapis.com:notaport/upload/x", request.uri)


def _edit_saved_sessions(edit):
    """The upload-sessions state file, changed by hand as ``edit(data)`` says."""
    state = UploadSessions()._file
    data = state.read()
    edit(data)
    state.path.write_text(json.dumps(data))


@pytest.mark.parametrize("edited", [
    # Not an address at all (urlsplit raises on it): on no origin.
    lambda uri: uri.replace("://", "://[", 1),
    lambda uri: "http://[drive]/upload/drive/v2/files?upload_id=1",
    # The upload origin with a user name: httplib2 would look up "user@127.0.0.1" and never
    # reach it, so every later push would fail on this one session.
    lambda uri: uri.replace("://", "://user@", 1),
], ids=["unclosed-bracket", "bracketed-name", "userinfo"])
def test_a_hand_edited_session_address_is_started_afresh(emulator, store, env, tmp_path,
                                                        edited):
    path, data = _file(tmp_path, "big.pt", 6 * CHUNK + 7)
    folder = store.make_folders("Models/logs")
    old_uri = _cut_after_three_chunks(store, path, folder, "big.pt")

    def edit(saved):
        for record in saved.values():
            record["uri"] = edited(old_uri)
    _edit_saved_sessions(edit)
    emulator.clear_requests()
    entry = store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert emulator.find("Models/logs/big.pt")["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert [f["id"] for f in _named(emulator, "big.pt")] == [entry.id]
    assert json.loads((env / "state" / "upload-sessions.json").read_text()) == {}


def test_damaged_entries_of_the_sessions_file_cost_only_themselves(emulator, store, env,
                                                                  tmp_path):
    # Entries edited by hand (or written by some other version): not a session record, a
    # "created" that is no time. They are forgotten; the upload, which saves its own session
    # (a file of several chunks), goes through.
    UploadSessions()._file.update(lambda data: data.update(
        {"a": "not a record", "b": ["x"], "c": {"uri": "http://x/1", "created": "monday"},
         "d": {"uri": "http://x/2", "created": None}}))
    path, data = _file(tmp_path, "big.pt", 3 * CHUNK + 7)
    folder = store.make_folders("Models/logs")
    entry = store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert emulator.find("Models/logs/big.pt")["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert json.loads((env / "state" / "upload-sessions.json").read_text()) == {}


# ------------------------------------------- a new session's address on another server is refused

from drivestage.errors import ForeignSessionError


@pytest.mark.parametrize("size", [6 * CHUNK + 7, 10], ids=["several-chunks", "one-chunk"])
def test_a_new_session_answered_on_another_server_gets_no_byte(emulator_factory, env, tmp_path,
                                                               size):
    # The server in use answers the session-creating POST with a session address on
    # another server (a lying server, or a proxy that rewrites answers). Following it would
    # send that server the file's bytes and the bearer token: the upload is refused with
    # one line naming both origins, and nothing is sent there or saved for a resume.
    from drivestage.drive import connect

    current = emulator_factory()
    elsewhere = emulator_factory()
    store = connect(api_root=current.url, token="t")
    folder = store.make_folders("Models/logs")
    path, _ = _file(tmp_path, "big.pt", size)
    current.faults.relocate_sessions(elsewhere.url, times=None)
    with pytest.raises(ForeignSessionError) as info:
        store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    here, there = current.url.rstrip("/"), elsewhere.url.rstrip("/")
    assert str(info.value) == (
        f"starting upload of {path} -> big.pt: the server at {here} answered with a session "
        f"address on {there}, another server; nothing was sent there. Drive never does "
        "that: check --api-root / DRIVESTAGE_API_ROOT and any proxy between you and Drive")
    assert elsewhere.requests == []
    assert _chunk_puts(current) == [] and _named(current, "big.pt") == []
    assert UploadSessions()._file.read() == {}



def test_a_new_session_address_that_is_no_address_is_refused(emulator, store, env, tmp_path):
    # Not an address at all (urlsplit raises on it): on no origin, and shown as it came.
    folder = store.make_folders("Models/logs")
    path, _ = _file(tmp_path, "big.pt", 3 * CHUNK + 7)
    emulator.faults.relocate_sessions("http://[drive")
    with pytest.raises(ForeignSessionError, match=r"address on 'http://\[drive/upload/drive/v2/"
                                                  r"files\?uploadType=resumable&"):
        store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    assert _chunk_puts(emulator) == [] and _named(emulator, "big.pt") == []


# ------------------------------------------- a Ctrl-C inside an upload leaves its file closed

from drivestage import pool as _pool
from drivestage.drive import media as _media, upload as _upload


def _held(path) -> list[str]:
    """This process's descriptors open on ``path``."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                out.append(fd)
        except OSError:  # the listing's own descriptor, closed since
            pass
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("where", [
    (_upload._Session, "send"),            # as the upload starts (its file opened before)
    (_media.HashingMedia, "close"),        # as the upload's end closes the file
    (_pool.Serial, "close"),               # as that waits for the hash thread to end
    (_pool.Serial, "drain"),
], ids=lambda w: f"{w[0].__name__}.{w[1]}")
def test_a_ctrl_c_inside_an_upload_leaves_its_file_closed(emulator, store, tmp_path, where):
    # A Ctrl-C lands at the start of a function of the upload (what a signal does between
    # two bytecodes). The failure's traceback is kept, as a push keeps the failures of its
    # uploads and IPython keeps the last one (sys.last_traceback): the local file must be
    # closed all the same, not when the collector gets to it. It stayed open when the
    # Ctrl-C landed as the upload started or as its close() began.
    folder = store.make_folders("x")
    path, _ = _file(tmp_path, "big.pt", 2 * 1024 * 1024 + 5)  # hashed by a thread beside
    target = getattr(*where).__code__

    def ctrl_c(frame, event, arg):
        if event == "call" and frame.f_code is target:
            sys.settrace(None)
            raise KeyboardInterrupt
        return None

    sys.settrace(ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt) as kept:
            store.upload(path, folder, "big.pt", chunk_size=4 * CHUNK)
    finally:
        sys.settrace(None)
    assert kept.traceback  # still held
    assert _held(path) == []
    # Nor is the hash thread left waiting for jobs for good (the upload never closed it):
    # it ends once idle. A thread left behind failed a later test of the same worker.
    for t in threading.enumerate():
        if t.name == "drivestage-md5":
            t.join(10)
            assert not t.is_alive()


# ------------------------------------------- two uploads of one file to one place at once

from urllib.parse import parse_qs, urlsplit

_CUT_CHILD = textwrap.dedent("""
    import sys
    from drivestage.drive import connect
    store = connect(api_root=sys.argv[1], token="test-token")
    folder = store.make_folders("Models/logs")

    def cut(n):
        raise KeyboardInterrupt  # a Ctrl-C once its first chunk is in
    try:
        store.upload(sys.argv[2], folder, "big.pt", chunk_size=int(sys.argv[3]), progress=cut)
    except KeyboardInterrupt:
        print("cut")
""")


@pytest.mark.parametrize("other", ["thread", "process"])
def test_two_uploads_of_one_file_at_once_keep_their_own_sessions(emulator, store, env,
                                                                 tmp_path, other):
    # Upload A of big.pt is under way (its session saved, a chunk in) when upload B of the
    # same file to the same place starts, in another thread or process, and is cut after a
    # chunk (a Ctrl-C). B must not send into A's session (it resumed it: both sent the same
    # chunks into one session), and B's session must survive A's end, so that B's rerun
    # resumes it (A's end dropped the one record they shared, and B's rerun sent the whole
    # file again in a new session).
    path, data = _file(tmp_path, "big.pt", 4 * CHUNK + 5)
    folder = store.make_folders("Models/logs")
    a_session = []

    def run_b() -> None:
        if other == "process":
            child = cli_server().run([emulator.url, path, str(CHUNK)], script=_CUT_CHILD,
                                     text=True, timeout=60)
            assert child.stdout.strip() == "cut", child.stderr
            return

        def cut(n):
            raise KeyboardInterrupt
        errors = []

        def b() -> None:
            try:
                store.upload(path, folder, "big.pt", chunk_size=CHUNK, progress=cut)
            except BaseException as exc:
                errors.append(exc)
        t = threading.Thread(target=b)
        t.start()
        t.join(60)
        assert [type(e) for e in errors] == [KeyboardInterrupt]

    def b_while_a_uploads(n: int) -> None:  # A's progress: the adversary's moment
        if not a_session:
            (record,) = UploadSessions()._file.read().values()
            a_session.append(parse_qs(urlsplit(record["uri"]).query)["upload_id"][0])
            run_b()

    a = store.upload(path, folder, "big.pt", chunk_size=CHUNK, progress=b_while_a_uploads)
    assert emulator.read_bytes(a.id) == data
    into_a = [r for r in _chunk_puts(emulator) if r.query.get("upload_id") == a_session[0]]
    assert sum(r.bytes_in for r in into_a) == len(data), "another upload sent into A's session"

    emulator.clear_requests()
    b = store.upload(path, folder, "big.pt", chunk_size=CHUNK)      # B's rerun
    assert emulator.read_bytes(b.id) == data and b.id != a.id
    assert not [r for r in _uploads(emulator) if r.method == "POST"], "B's session was lost"
    assert sum(r.bytes_in for r in _chunk_puts(emulator)) == len(data) - CHUNK
    assert sorted(f["id"] for f in _named(emulator, "big.pt")) == sorted([a.id, b.id])
    assert json.loads((env / "state" / "upload-sessions.json").read_text()) == {}


def test_a_session_moved_to_another_server_mid_upload_gets_no_more_bytes(emulator_factory,
                                                                         env, tmp_path):
    # googleapiclient follows a Location in a chunk's "308 Resume Incomplete" answer: a lying
    # server (or a rewriting proxy) could move the session, and the rest of the file and the
    # token with it, to another server that way. Drive never answers one: the upload stops.
    from drivestage.drive import connect

    current = emulator_factory()
    elsewhere = emulator_factory()
    store = connect(api_root=current.url, token="t")
    folder = store.make_folders("Models/logs")
    path, _ = _file(tmp_path, "big.pt", 4 * CHUNK + 7)
    moved = f"{elsewhere.url}upload/drive/v2/files?uploadType=resumable&upload_id=x"
    current.faults.inject("PUT", r"upload_id=", status=308, body="",
                          headers={"Location": moved, "Range": f"bytes=0-{CHUNK - 1}"})
    with pytest.raises(ForeignSessionError) as info:
        store.upload(path, folder, "big.pt", chunk_size=CHUNK)
    here, there = current.url.rstrip("/"), elsewhere.url.rstrip("/")
    assert str(info.value) == (
        f"uploading {path} -> big.pt: the server at {here} moved the upload session to "
        f"{there}, another server; nothing more was sent. Drive never does that: check "
        "--api-root / DRIVESTAGE_API_ROOT and any proxy between you and Drive")
    assert elsewhere.requests == []
    assert _named(current, "big.pt") == []


def test_an_upload_hashed_in_the_tick_of_its_files_last_write_is_not_cached(
        emulator, store, tmp_path, monkeypatch):
    """The upload hashes the bytes as it sends them, from right after its stat. Its md5 was
    cached as "settled" by the time the upload ended: a same-size rewrite in the tick of
    the file's last write (coarse timestamps) keeps the identity the cache is keyed by, and
    the next push called the file unchanged. The tick is counted from where the hash began
    (here a tick of 1 s, an upload held 1.5 s by Drive's latency)."""
    import drivestage.state as state
    from drivestage.state import Md5Cache

    monkeypatch.setattr(state, "RACY_NS", 1_000_000_000)
    folder = store.make_folders("Models/logs")
    cache = Md5Cache()
    emulator.faults.latency(1.5, path=r"^/upload/", times=1)
    path, data = _file(tmp_path, "results.csv", CHUNK + 3)
    st = os.stat(path)
    entry = store.upload(path, folder, "results.csv", chunk_size=CHUNK, md5_cache=cache)
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert cache.get(path, st) is None          # hashed (begun) in the write's tick: not kept
