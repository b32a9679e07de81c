"""Creates that can be sent twice: every file and folder a push creates names an id Drive
generated (files.generateIds), recorded on this machine before the create goes out, so a
create whose answer was lost (a timeout, a reset, the process killed or Ctrl-C'd while the
answer was on its way) is sent again with the same id, and Drive answers 409 instead of
making a second file.

The window these close: a push cut while its last PUT was in flight, and a rerun at once,
whose listing (Drive's lags) does not show the file the server made meanwhile: it sent the
file again, two files of one name. The emulator's ``lag_listing`` hides the created item from
the rerun's listing (by count of answers, never by time); a dropped answer stands for the cut.
Asserted: the files left on Drive (names, ids, md5s) and request counts."""
from __future__ import annotations

import hashlib
import os

import pytest

from _drive_state import live_md5s
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

DEST = "Models/run"


def _store(emu, retries=None):
    """A connection of its own (another process); ``retries``: attempts per request."""
    from drivestage.drive import connect

    store = connect(api_root=emu.url, token="test-token")
    if retries is not None:
        store.set_retries(retries)
    return store


def _push(emu, src, dest=DEST, retries=None):
    from drivestage.upload_tree import push

    return push(str(src), dest, store=_store(emu, retries))


def _write(path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.md5(data).hexdigest()


def _create_answer_to_lose(emu, src) -> str:
    """SRC's ``keep.txt`` pushed; then ``b.bin`` written, whose create's answer the emulator
    will not send (the upload's PUT made it, its answer dropped) and whose file its next 5
    listings will not show: ``b.bin``'s md5."""
    _write(src / "keep.txt", b"already there")
    _push(emu, src)
    want = _write(src / "b.bin", os.urandom(7000))
    emu.faults.lag_listing(created=5, titles=r"^b\.bin$")
    emu.faults.drop("PUT", r"upload_id=", after_bytes=0, direction="response")
    return want


def _named(emu, title):
    return [f for f in emu.files() if f["title"] == title and not f["labels"]["trashed"]]


def test_a_create_whose_answer_was_lost_is_sent_again_with_its_id(emulator, env, tmp_path):
    """(a) The final PUT's answer is lost after the server made the file: the retry asks the
    session, and the file is the one whose id this machine asked Drive for."""
    src = tmp_path / "src"
    want = _write(src / "a.bin", os.urandom(5000))
    emulator.faults.drop("PUT", r"upload_id=", after_bytes=0, direction="response")
    _push(emulator, src)
    made = _named(emulator, "a.bin")
    assert [f["md5Checksum"] for f in made] == [want]
    assert emulator.store.generated.get(made[0]["id"]) is True  # made with a generated id


def test_cut_then_rerun_at_once_leaves_one_file(emulator, env, tmp_path):
    """(b) The push dies while the server makes the file (its answer never arrives); the
    rerun's listing does not show it yet: the rerun sends the create with the recorded id,
    Drive answers 409, and the file there (its md5 the local one's) counts as uploaded."""
    src = tmp_path / "src"
    want = _create_answer_to_lose(emulator, src)
    with pytest.raises(Exception):
        _push(emulator, src, retries=1)  # the answer lost, no retry: as a Ctrl-C leaves it
    assert [f["md5Checksum"] for f in _named(emulator, "b.bin")] == [want]  # the server made it
    emulator.clear_requests()
    result = _push(emulator, src)
    assert live_md5s(emulator, DEST) == {"keep.txt": [hashlib.md5(b"already there").hexdigest()],
                                         "b.bin": [want]}
    assert result.uploaded == ["b.bin"]
    # No byte of it was sent again: the session start was answered 409.
    assert not [r for r in emulator.requests if r.query.get("upload_id")]


def test_rerun_after_the_file_changed_updates_the_one_made(emulator, env, tmp_path):
    """(b) As above, but the local file changed before the rerun: the file the lost create
    made is updated in place, never a second one made beside it."""
    src = tmp_path / "src"
    _write(src / "log.txt", b"first version")
    emulator.faults.lag_listing(created=5, titles=r"^log\.txt$")
    emulator.faults.drop("PUT", r"upload_id=", after_bytes=0, direction="response")
    with pytest.raises(Exception):
        _push(emulator, src, retries=1)
    first = _named(emulator, "log.txt")
    assert len(first) == 1
    want = _write(src / "log.txt", b"second version, longer")
    _push(emulator, src)
    assert [(f["id"], f["md5Checksum"]) for f in _named(emulator, "log.txt")] == \
        [(first[0]["id"], want)]


def test_a_recorded_id_whose_file_was_deleted_is_dropped(emulator, env, tmp_path):
    """The file a lost create made was deleted on Drive before the rerun: the recorded id
    (answered 409: Drive never gives an id twice) is dropped and the file sent anew, once."""
    src = tmp_path / "src"
    want = _write(src / "c.bin", os.urandom(3000))
    emulator.faults.drop("PUT", r"upload_id=", after_bytes=0, direction="response")
    with pytest.raises(Exception):
        _push(emulator, src, retries=1)
    gone = _named(emulator, "c.bin")[0]["id"]
    emulator.store.delete(gone)
    _push(emulator, src)
    made = _named(emulator, "c.bin")
    assert [f["md5Checksum"] for f in made] == [want] and made[0]["id"] != gone
    from drivestage.create_ids import CreateIds

    # verified: kept a while with its md5, for a next push whose listing lags
    assert [(r["id"], r["md5"]) for r in CreateIds().recorded().values()] == \
        [(made[0]["id"], want)]


def test_folder_create_whose_answer_was_lost_makes_one_folder(emulator, env, tmp_path):
    """(c) The answer to a folder's create is lost after Drive made it, and listings do not
    show it yet: the retry finds it by its id (or is answered 409), one folder."""
    src = tmp_path / "src"
    _write(src / "sub" / "x.txt", b"x")
    emulator.add_folder("Models")
    emulator.faults.lag_listing(created=20, titles=r"^(run|sub)$")
    emulator.faults.drop("POST", r"^/drive/v2/files\?", after_bytes=0, direction="response",
                         times=2)
    _push(emulator, src)
    assert len(_named(emulator, "run")) == 1 and len(_named(emulator, "sub")) == 1
    assert [f["md5Checksum"] for f in _named(emulator, "x.txt")] == \
        [hashlib.md5(b"x").hexdigest()]


def test_folder_create_cut_then_rerun_makes_one_folder(emulator, env, tmp_path):
    """(c) The push dies while Drive makes DEST's folder; the rerun's listing does not show
    it: the rerun makes it with the recorded id (answered 409) or finds it by id."""
    src = tmp_path / "src"
    _write(src / "y.txt", b"y")
    emulator.add_folder("Models")
    emulator.faults.lag_listing(created=20, titles=r"^run$")
    emulator.faults.drop("POST", r"^/drive/v2/files\?", after_bytes=0, direction="response")
    with pytest.raises(Exception):
        _push(emulator, src, retries=1)
    assert len(_named(emulator, "run")) == 1
    _push(emulator, src)
    assert len(_named(emulator, "run")) == 1
    assert live_md5s(emulator, DEST) == {"y.txt": [hashlib.md5(b"y").hexdigest()]}


def test_ids_cost_one_or_two_requests_per_push_and_none_when_unchanged(emulator, env,
                                                                       tmp_path, monkeypatch):
    """(d) A first push asks generateIds once or twice (its folders, then its files: one
    request each, up to 1,000 ids); an unchanged second push never asks. The files' ids are
    recorded in one state write (and forgotten in one), never one per file."""
    import drivestage.state as state

    writes: list[str] = []
    atomic_write = state.atomic_write
    monkeypatch.setattr(state, "atomic_write",
                        lambda path, data: (writes.append(os.path.basename(path)),
                                            atomic_write(path, data))[1])
    src = tmp_path / "src"
    for i in range(24):
        _write(src / ("abc"[i % 3]) / f"f{i:02d}.txt", b"%d" % i)
    _write(src / "top.txt", b"top")
    _push(emulator, src)
    assert 1 <= emulator.api_calls("files.generateIds") <= 2
    assert writes.count("create-ids.json") == 2  # recorded before the creates, then verified
    made = [f for f in emulator.files() if f["title"] != "My Drive"]
    assert len(made) == 2 + 3 + 25  # Models, run, a-c, the files
    assert all(emulator.store.generated.get(f["id"]) for f in made)  # each with its own id
    emulator.clear_requests()
    writes.clear()
    _push(emulator, src)
    assert emulator.api_calls("files.generateIds") == 0
    assert "create-ids.json" not in writes
    from drivestage.create_ids import CreateIds

    # Each file's record, verified (kept an hour for a next push whose listing lags): the
    # unchanged push wrote nothing to drop them; a push that writes drops those it listed.
    files = {f["id"]: f["md5Checksum"] for f in made if "md5Checksum" in f}
    assert {r["id"]: r["md5"] for r in CreateIds().recorded().values()} == files


def test_ids_are_asked_in_requests_of_at_most_1000(emulator, env):
    from drivestage.drive.ids import IdPool

    pool = IdPool(_store(emulator).transport, emulator.url)
    got = pool.take(1500)
    assert len(got) == len(set(got)) == 1500
    assert [r.query.get("maxResults") for r in emulator.requests
            if r.kind == "files.generateIds"] == ["1000", "500"]


@pytest.mark.parametrize("status", [404, 400, 501, 403])
def test_a_server_without_generate_ids_still_pushes(emulator_factory, env, tmp_path, status,
                                                    monkeypatch):
    """(e) A server that does not know files.generateIds: asked once per process, then
    creates go without an id, as before. (403: Drive refusing it; asked again by the next
    push, which fails the same way: once per push.)"""
    from drivestage.drive import ids

    # The process's memory of such servers, this test's alone (a later emulator of this
    # worker may get the same port).
    monkeypatch.setattr(ids, "_WITHOUT", set())
    emulator = emulator_factory()
    emulator.faults.inject(method="GET", path="generateIds", status=status, times=None,
                           reason="insufficientFilePermissions" if status == 403 else None)
    src = tmp_path / "src"
    want = _write(src / "d" / "z.bin", b"zz")
    _push(emulator, src)
    _write(src / "d" / "w.bin", b"ww")
    _push(emulator, src)
    assert emulator.api_calls("files.generateIds") == (2 if status == 403 else 1)
    assert live_md5s(emulator, DEST + "/d") == {"z.bin": [want],
                                                "w.bin": [hashlib.md5(b"ww").hexdigest()]}


def test_a_folder_deleted_since_this_machine_made_it_is_made_anew(emulator, env, tmp_path):
    """The id recorded for a folder this machine made lately is Drive's for good: once the
    folder was deleted, a push that makes it again is answered 409 for that id, and makes it
    with another, once."""
    src = tmp_path / "src"
    _write(src / "z.txt", b"z")
    _push(emulator, src)
    first = _named(emulator, "run")[0]["id"]
    emulator.store.delete(first)
    _push(emulator, src)
    again = _named(emulator, "run")
    assert len(again) == 1 and again[0]["id"] != first
    assert emulator.store.generated.get(again[0]["id"]) is True
    assert live_md5s(emulator, DEST) == {"z.txt": [hashlib.md5(b"z").hexdigest()]}
