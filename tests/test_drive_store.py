"""drivestage.drive.store: DriveStore on the real PyDrive2 + googleapiclient + httplib2 stack
against the emulator."""
from __future__ import annotations
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

import hashlib
import logging
import os

import pytest

from drivestage import errors
from drivestage.drive import DriveStore, connect
from drivestage.paths import StorePath
from drivestage.remote import open_store
from drivestage.store import RemoteEntry, RemoteStore
from store_contract import StoreContract


@pytest.fixture
def store(drive_env) -> DriveStore:
    return connect()


def _gets(emu, fragment=""):
    return [r for r in emu.requests if r.method == "GET" and fragment in r.path]


def test_connect_needs_no_network_and_points_everything_at_the_emulator(emulator, drive_env):
    emulator.clear_requests()
    store = connect()
    assert emulator.requests == []
    assert isinstance(store, RemoteStore)
    assert store.service._rootDesc["rootUrl"] == emulator.url
    assert store.service._baseUrl.startswith(emulator.url)


def test_resolve_paths_ids_and_exact_case(emulator, store):
    fid = emulator.add_file("Data/VOC/a.zip", b"abc")
    emulator.add_file("Data/voc/b.zip", b"other")
    folder = emulator.find("Data/VOC")["id"]
    e = store.resolve("Data/VOC/a.zip")
    assert (e.id, e.name, e.size, e.is_dir) == (fid, "a.zip", 3, False)
    assert e.md5 == hashlib.md5(b"abc").hexdigest() and e.parent_id == folder
    assert store.describe(e) == "drive:Data/VOC/a.zip"
    assert store.resolve("Data/voc/b.zip").size == 5
    assert store.resolve(f"id:{fid}").id == fid
    assert store.resolve(f"id:{folder}/a.zip").id == fid
    with pytest.raises(errors.NotFoundError, match=r"drive:Data/Voc not found .*'Voc'.*"
                                                    r"case-sensitive"):
        store.resolve("Data/Voc/a.zip")
    with pytest.raises(errors.NotFoundError, match="is a file, not a folder"):
        store.resolve("Data/VOC/a.zip/x")
    with pytest.raises(errors.NotFoundError):
        store.resolve("id:doesnotexist123")


def test_duplicate_names_name_the_colliding_ids(emulator, store):
    a = emulator.add_file("w/best.pth", b"1")
    b = emulator.add_file("w/best.pth", b"2")
    with pytest.raises(errors.DuplicateNameError) as info:
        store.resolve("w/best.pth")
    assert set(info.value.ids) == {a, b}
    assert a in str(info.value) and b in str(info.value)
    assert "drive:id:" in str(info.value)


def test_folder_ids_are_cached_per_run(emulator, store):
    emulator.add_file("a/b/c/1.bin", b"1")
    emulator.add_file("a/b/c/2.bin", b"2")
    store.resolve("a/b/c/1.bin")
    emulator.clear_requests()
    store.resolve("a/b/c/2.bin")
    lists = _gets(emulator, "/drive/v2/files")
    assert len(lists) == 1 and "title='2.bin'" in lists[0].query["q"]


def test_collections_are_built_once_per_process_not_per_call_thread_or_connection(
        emulator_factory, env, monkeypatch):
    """googleapiclient builds ``service.files()`` anew on each call, rendering every method's
    documentation (3 ms of CPU; PyDrive2 asks for it on each metadata call), and each
    connection (every connect, every command run in a notebook) and each of its threads
    built its own (6 % of the tests' CPU): a process builds it once for an API root, and
    every connection and thread gets a copy of its own, which sends through its own
    connection with its own token (a connection with a wrong one is refused whichever built
    first, and the right one still works after it)."""
    import threading

    import googleapiclient.discovery as discovery
    from googleapiclient.errors import HttpError

    from drivestage.drive import services

    emulator = emulator_factory(token="t")
    monkeypatch.setattr(services, "_BUILT", {})   # (nothing built for any root yet)
    built: list[str] = []
    real = discovery.createMethod

    def counting(name, *args, **kwargs):  # calls through: only counts
        built.append(f"{threading.get_ident()}:{name}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(discovery, "createMethod", counting)
    for i in range(3):
        emulator.add_file(f"runs/r/{i}.bin", bytes([i]) * (i + 1))
    wrong = connect(api_root=emulator.url, token="wrong")
    with pytest.raises(errors.AuthError, match="401"):
        wrong.resolve("runs/r/0.bin")
    first = len(built)
    assert first > 0  # the first call in this process built the collection
    store = connect(api_root=emulator.url, token="t")
    store.resolve("runs/r/0.bin")
    for _ in range(5):
        assert [e.size for e in sorted(store.list(store.resolve("runs/r")),
                                       key=lambda e: e.name)] == [1, 2, 3]
        assert store.stat(store.resolve("runs/r/2.bin")).size == 3
    assert len(built) == first, "a metadata call or a connection built googleapiclient methods"
    assert store.service.files() is store.service.files()
    assert store.service.files() is not wrong.service.files()
    other: list = []
    t = threading.Thread(target=lambda: other.extend(
        [store.service.files(), store.service.files(), store.resolve("runs/r/1.bin").size]))
    t.start()
    t.join()
    assert other[0] is other[1] and other[0] is not store.service.files() and other[2] == 2
    with pytest.raises(errors.AuthError, match="401"):
        connect(api_root=emulator.url, token="wrong").stat(store.resolve("runs/r/2.bin"))
    assert store.stat(store.resolve("runs/r/2.bin")).size == 3
    # A request that names no connection (as the media reads' metadata calls) goes through
    # the service's own, with its token.
    fid = store.resolve("runs/r/2.bin").id
    assert store.service.files().get(fileId=fid, fields="fileSize").execute() == {"fileSize": "3"}
    with pytest.raises(HttpError) as refused:
        wrong.service.files().get(fileId=fid, fields="fileSize").execute()
    assert refused.value.resp.status == 401
    assert len(built) == first


def test_a_service_made_from_another_roots_makes_the_addresses_of_its_own(emulator_factory, env,
                                                                        tmp_path, monkeypatch):
    """The service for a second API root (an emulator on another port, a proxy) is made from
    the first one's: every address it makes is the one a service built for it makes (a media
    upload's and a batch's are built from the document's root, not the service's base URL),
    and an upload through it reaches its own server, not the first."""
    import httplib2
    from googleapiclient.http import MediaInMemoryUpload

    from drivestage.drive import services
    from drivestage.drive.connections import discovery_doc

    def addresses(service):
        files = service.files()
        return [files.get(fileId="x").uri, files.get_media(fileId="x").uri,
                files.list(q="a").uri, files.insert(body={"title": "a"}).uri,
                files.insert(body={"title": "a"}, media_body=MediaInMemoryUpload(
                    b"x", resumable=True)).uri,
                files.insert(body={"title": "a"}, media_body=MediaInMemoryUpload(b"x")).uri,
                files.update(fileId="y", body={}, media_body=MediaInMemoryUpload(
                    b"x", resumable=True)).uri,
                service.about().get().uri, service.permissions().list(fileId="x").uri,
                service.new_batch_http_request()._batch_uri]

    monkeypatch.setattr(services, "_BUILT", {})
    first = services.drive_service("http://127.0.0.1:1111/", httplib2.Http())
    for root in ("http://127.0.0.1:2222/", "https://drive.example:8443/prefix/"):
        made = services.drive_service(root, httplib2.Http())
        assert services._BUILT[(root, None)]._like is not None   # (made from the first's)
        assert addresses(made) == addresses(services.build_service(discovery_doc(root),
                                                                   httplib2.Http()))
        assert all(a.startswith(root) for a in addresses(made))
    assert all(a.startswith("http://127.0.0.1:1111/") for a in addresses(first))

    a, b = emulator_factory(), emulator_factory()
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights" * 1000)
    for emu, other in ((a, b), (b, a)):
        store = connect(api_root=emu.url, token="t")
        entry = store.upload(str(path), store.make_folders("runs"), f"{emu.port}.bin")
        assert emu.find(f"runs/{emu.port}.bin")["md5Checksum"] == entry.md5 \
            == hashlib.md5(path.read_bytes()).hexdigest()
        assert other.find(f"runs/{emu.port}.bin") is None
    assert services._BUILT[(b.url, None)]._like is not None


def test_list_all_pages_without_trashed(emulator, store, monkeypatch):
    for i in range(5):
        emulator.add_file(f"many/f{i}.txt", b"x" * i)
    gone = emulator.add_file("many/old.txt", b"old")
    store.delete(RemoteEntry(id=gone, name="old.txt", is_dir=False), trash=True)
    monkeypatch.setattr(DriveStore, "_list_params",
                        lambda self: {"maxResults": 2, "supportsAllDrives": True,
                                      "includeItemsFromAllDrives": True})
    emulator.clear_requests()
    names = sorted(e.name for e in store.list(store.resolve("many")))
    assert names == [f"f{i}.txt" for i in range(5)]
    assert len(_gets(emulator, "/drive/v2/files")) >= 3  # paged


def test_make_folders_is_idempotent_even_when_the_answer_is_lost(emulator, store):
    top = store.make_folders("Models/yolo/logs")
    assert store.make_folders("Models/yolo/logs").id == top.id
    # The server creates the folder, then the connection drops before the answer arrives:
    # the retry must find it instead of creating a twin.
    emulator.faults.drop(method="POST", path=r"/drive/v2/files", after_bytes=0, times=1)
    fresh = connect(api_root=emulator.url, token="test-token")
    made = fresh.make_folders("Models/yolo/runs")
    twins = [f for f in emulator.files() if f["title"] == "runs"]
    assert [f["id"] for f in twins] == [made.id]
    with pytest.raises(errors.UsageError, match="is a file"):
        emulator.add_file("Models/afile", b"x")
        fresh.make_folders("Models/afile/sub")


def test_delete_and_trash(emulator, store):
    fid = emulator.add_file("d/x.bin", b"x")
    entry = store.resolve("d/x.bin")
    store.delete(entry, trash=True)
    assert [f["labels"]["trashed"] for f in emulator.files() if f["id"] == fid] == [True]
    with pytest.raises(errors.NotFoundError, match="trash"):
        store.stat(entry)
    store.delete(entry)
    assert not [f for f in emulator.files() if f["id"] == fid]


def test_quota_numbers(emulator_factory, tmp_path, monkeypatch):
    emu = emulator_factory(quota_bytes=10_000, token="t")
    emu.add_file("a.bin", b"x" * 1000)
    q = connect(api_root=emu.url, token="t").quota()
    assert (q.total, q.used, q.trash, q.free) == (10_000, 1000, 0, 9000)


def test_shared_drives(emulator, drive_env):
    team = emulator.add_shared_drive("Team Data")
    fid = emulator.add_file("VOC/x.bin", b"shared bytes", drive_id=team)
    store, rel = open_store("drive:shared/Team Data/VOC/x.bin")
    assert rel == StorePath(None, ("VOC", "x.bin")) and store.drive_id == team
    entry = store.resolve(rel)
    assert entry.id == fid and store.describe(entry) == "drive:shared/Team Data/VOC/x.bin"
    assert b"".join(store.read_range(entry, 0, entry.size)) == b"shared bytes"
    lists = [r for r in emulator.requests if r.path == "/drive/v2/files"]
    assert lists[-1].query.get("driveId") == team
    with pytest.raises(errors.NotFoundError, match="no shared drive named 'team data'.*"
                                                    "'Team Data'"):
        open_store("drive:shared/team data/VOC/x.bin")


def test_read_range_in_chunks(emulator, store):
    data = os.urandom(100_003)
    fid = emulator.add_file("r.bin", data)
    entry = store.resolve("r.bin")
    emulator.clear_requests()
    pieces = list(store.read_range(entry, 10, 100_003, chunk_size=30_000))
    assert b"".join(pieces) == data[10:]
    assert [len(p) for p in pieces] == [30_000, 30_000, 30_000, 9_993]
    ranges = [r.headers.get("Range") for r in _gets(emulator, fid)]
    assert ranges == ["bytes=10-30009", "bytes=30010-60009", "bytes=60010-90009",
                      "bytes=90010-100002"]


@pytest.mark.parametrize("fault", ["502-html", "reset", "403-rate", "429"])
def test_metadata_calls_survive_transient_faults(emulator, store, caplog, fault):
    emulator.add_file("m/x.bin", b"x")
    if fault == "502-html":
        emulator.faults.inject("GET", r"/drive/v2/files\?", status=502,
                               body="<html><b>502.</b> That's an error.</html>",
                               content_type="text/html")
    elif fault == "reset":
        emulator.faults.drop("GET", r"/drive/v2/files\?", after_bytes=10)
    elif fault == "403-rate":
        emulator.faults.inject("GET", r"/drive/v2/files\?", status=403,
                               reason="userRateLimitExceeded")
    else:
        emulator.faults.inject("GET", r"/drive/v2/about", status=429)
    with caplog.at_level(logging.WARNING, logger="drivestage.drive.retry"):
        if fault == "429":
            assert store.quota().used == 1
        else:
            assert store.resolve("m/x.bin").size == 1
    assert any("retry 1/" in r.getMessage() for r in caplog.records)


def test_permanent_faults_are_typed(emulator, store):
    fid = emulator.add_file("p/x.bin", b"x")
    emulator.faults.inject("GET", rf"/files/{fid}", status=403,
                           reason="insufficientFilePermissions",
                           message="The user does not have sufficient permissions for this "
                                   "file.")
    with pytest.raises(errors.PermissionDeniedError, match="sufficient permissions"):
        store.stat(RemoteEntry(id=fid, name="x.bin", is_dir=False))
    emulator.faults.inject("GET", r"/drive/v2/about", status=500, times=None)
    with pytest.raises(errors.RemoteError, match="still failing after 8 attempts"):
        store.quota()


def test_wrong_token_is_an_auth_error(emulator_factory, tmp_path):
    emu = emulator_factory(token="right")
    with pytest.raises(errors.AuthError, match="401"):
        connect(api_root=emu.url, token="wrong").quota()


def test_bad_api_root_is_a_usage_error():
    with pytest.raises(errors.UsageError, match="not an http"):
        connect(api_root="127.0.0.1:80", token="t")


# --------------------------------------------------------------------------- shared contract


class TestDriveStoreContract(StoreContract):
    """The RemoteStore contract on Google Drive (the emulator) through the real stack."""

    @pytest.fixture
    def store(self, drive_env):
        return connect()
