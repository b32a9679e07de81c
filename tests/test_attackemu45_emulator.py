"""The Drive emulator attacked as a hostile client, a web page, a second emulator and a
hand-edited state folder would (attackemu45). Each test names what it found:

- a web page on any site could POST ``text/plain`` (a simple request: no preflight) to
  127.0.0.1 and inject faults, seed files, or upload with ``?access_token=x``;
- ``drivestage emulator --host 0.0.0.0`` without ``--token`` served any token, and the
  control API with none, to the whole network;
- a ``q``, a JSON body or a ``fields`` nested thousands deep answered 500 backendError
  (Python's recursion limit), which a client retries as Drive's own failure;
- a multipart upload whose metadata part never ended, or any body under a negative
  ``Content-Length``, was held whole in memory;
- two emulators on one ``--data-dir`` each overwrote the other's state;
- a corrupted or hand-edited state file ended the CLI in a traceback;
- a SIGKILL while a file's bytes were replaced, or as a resumable upload completed, left
  that file (that session) answering 500 for good; one as a file was created left its
  bytes on disk for good;
- idle connections each held a thread for good; the request log was bounded in records
  only, not in bytes.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time

import pytest
from googleapiclient.errors import HttpError

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from drivestage.drive import connect
from drivestage.emulator import Emulator
from drivestage.emulator.errors import DataDirError


def _ask(emu, method, target, headers, body=b""):
    """(status, reason, message) of one raw request, as a browser would send it."""
    sock = socket.create_connection((emu.host, emu.port), timeout=10)
    headers = {"Content-Length": str(len(body)), **headers}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\n{head}"
                 "Connection: close\r\n\r\n".encode() + body)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    status = int(data.split(b" ", 2)[1])
    err = json.loads(data.split(b"\r\n\r\n", 1)[1]).get("error", {}) if status != 200 else {}
    return status, err.get("errors", [{}])[0].get("reason"), err.get("message")


def test_a_web_page_cannot_drive_the_emulator(emulator):
    fault = json.dumps({"kind": "inject", "status": 500, "times": None}).encode()
    page = {"Content-Type": "text/plain;charset=UTF-8"}
    # What a page's fetch()/form POST to http://127.0.0.1:PORT/ sends: its Origin ("null"
    # from a sandboxed frame or a file:// page), or at least Sec-Fetch-Site.
    asks = [
        ("POST", "/_emulator/faults", {**page, "Origin": "https://evil.example"}, fault),
        ("POST", "/_emulator/files?path=planted.bin", {**page, "Origin": "null"}, b"x"),
        ("POST", "/upload/drive/v2/files?uploadType=media&access_token=x",
         {**page, "Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}, b"x"),
        ("POST", "/_emulator/set_service_account", {**page, "Sec-Fetch-Site": "cross-site"},
         b"{}"),
    ]
    for method, target, headers, body in asks:
        status, reason, message = _ask(emulator, method, target, headers, body)
        assert (status, reason) == (403, "forbidden"), target
        assert message.startswith("Cross-origin request from ") and \
            message.endswith("refused: the emulator answers programs, not web pages."), message
    assert emulator.faults.describe()["rules"] == [] and emulator.files() == []
    assert not emulator.service_account
    # The emulator's own origin (a page it served, were there one) and programs are served.
    own = {**page, "Origin": f"http://127.0.0.1:{emulator.port}", "Sec-Fetch-Site": "same-origin"}
    assert _ask(emulator, "POST", "/_emulator/faults", own, fault)[0] == 200
    emulator.faults.clear()
    assert _ask(emulator, "POST", "/_emulator/files?path=mine.bin", {}, b"x")[0] == 200
    assert [f["title"] for f in emulator.files()] == ["mine.bin"]


def test_input_nested_too_deep_is_refused_not_a_server_error(emulator):
    emulator.add_file("a.bin", b"a")
    service = connect(api_root=emulator.url, token="t").service
    deep = "(" * 5000 + "title = 'a.bin'" + ")" * 5000   # (sent as a POST: over 2,048 chars)
    before = len(emulator.requests)
    with pytest.raises(HttpError) as err:
        service.files().list(q=deep).execute()
    assert err.value.resp.status == 400
    body = json.loads(err.value.content)["error"]
    assert (body["errors"][0]["reason"], body["message"]) == \
        ("invalid", "Invalid query: nested deeper than 100 levels")
    assert len(emulator.requests) == before + 1
    for q in ["(" * 100 + "title = 'a.bin'" + ")" * 100, "not " * 98 + "not title = 'b.bin'"]:
        assert [f["title"] for f in service.files().list(q=q).execute()["items"]] == ["a.bin"]
    # A JSON body or a fields selection nested as deep: 400 too (were 500s).
    json_bomb, auth = b"[" * 200000, {"Authorization": "Bearer t"}
    for method, target, body in [("POST", "/drive/v2/files", json_bomb),
                                 ("POST", "/_emulator/faults", json_bomb),
                                 ("GET", "/drive/v2/about?fields=" + "a(" * 3000 + "b" + ")" * 3000,
                                  b"")]:
        assert _ask(emulator, method, target, auth, body) == \
            (400, "badRequest", "The request is nested too deeply."), target
    assert emulator.files() == [emulator.find("a.bin")] and not emulator.faults.describe()["rules"]


def test_a_multipart_metadata_part_without_end_is_refused_as_it_grows(emulator):
    """Content-Length says 8 GiB; the metadata part's closing boundary never comes. The
    emulator must refuse it once past 1 MiB, not hold the body in memory until it ends: the
    client sends 3 MiB, then closes its side, and must get the 400 back."""
    sock = socket.create_connection((emulator.host, emulator.port), timeout=20)
    sock.sendall(b"POST /upload/drive/v2/files?uploadType=multipart HTTP/1.1\r\n"
                 b"Host: 127.0.0.1\r\nAuthorization: Bearer t\r\n"
                 b"Content-Type: multipart/related; boundary=BND\r\n"
                 b"Content-Length: 8589934592\r\n\r\n"
                 b"--BND\r\nContent-Type: application/json\r\n\r\n{\"title\": \"")
    for _ in range(3):
        sock.sendall(b"a" * (1 << 20))
    sock.shutdown(socket.SHUT_WR)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.1 400 "), data[:200]
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["message"] == \
        "Metadata part is too large."
    assert emulator.files() == []
    # A negative Content-Length read the body to its end, whole, in memory: refused at once.
    for length in ("-1", "12abc"):
        assert _ask(emulator, "POST", "/drive/v2/files",
                    {"Authorization": "Bearer t", "Content-Length": length}) == \
            (400, "badRequest", f"Invalid Content-Length: {length!r}.")


def test_one_emulator_per_data_dir_and_unreadable_state_is_one_line(tmp_path):
    data_dir = tmp_path / "drive"
    cli = cli_server()
    with Emulator(data_dir=str(data_dir)) as first:
        first.add_file("kept.bin", b"kept")
        with pytest.raises(DataDirError, match="is in use by another Drive emulator"):
            Emulator(data_dir=str(data_dir)).start()
        done = cli.run(["emulator", "--data-dir", str(data_dir)], timeout=30, text=True)
        assert (done.returncode, done.stdout, done.stderr) == (
            1, "", f"Error: {data_dir} is in use by another Drive emulator; stop it, or give "
                   "this one another --data-dir\n")
    with Emulator(data_dir=str(data_dir)) as again:   # free once the first stopped
        assert again.read_bytes(again.find("kept.bin")["id"]) == b"kept"

    db = data_dir / "state.sqlite3"
    with sqlite3.connect(db) as conn:                  # a row edited by hand
        conn.execute("UPDATE files SET doc = '{not json' WHERE id = "
                     "(SELECT id FROM files LIMIT 1)")
    conn.close()
    done = cli.run(["emulator", "--data-dir", str(data_dir)], timeout=30, text=True)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"Error: cannot read the emulator's state in {db}: ")
    assert done.stderr.endswith(" (corrupted or edited by hand?); restore it, or start with an "
                                "empty --data-dir\n") and done.stderr.count("\n") == 1
    db.write_bytes(b"not a database" * 100)            # a corrupted file
    with pytest.raises(DataDirError, match="cannot read the emulator's state in .*: file is "
                                           "not a database"):
        Emulator(data_dir=str(data_dir)).start()
    with pytest.raises(DataDirError, match="cannot read"):  # (the lock was let go)
        Emulator(data_dir=str(data_dir)).start()


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_network_bind_without_a_token_is_refused(tmp_path, host):
    done = cli_server().run(["emulator", "--port", "0", "--host", host], cwd=str(tmp_path),
                            timeout=30, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", f"Error: --host {host} is reachable from other machines, and without --token "
               "anyone who reaches it may read and change its files and its control API; give "
               "--token TOKEN too, or --host 127.0.0.1\n")
    assert list(tmp_path.iterdir()) == []


#: ``drivestage emulator ...`` killed (SIGKILL) right before it moves a file's new bytes
#: into the head's place, its old head's bytes already moved aside (an os.rename whose
#: destination an earlier rename moved away); with ``remove`` as its first argument, right
#: before it removes bytes it had moved aside (the record saved: replaced in place).
KILLER = """
import os, signal, sys
moved_away, moved_to = set(), set()
at = sys.argv.pop(1)

def hook(name, args):
    if name == "os.rename":
        src, dst = os.fspath(args[0]), os.fspath(args[1])
        if at == "rename" and dst in moved_away:
            os.kill(os.getpid(), signal.SIGKILL)
        moved_away.add(src)
        moved_to.add(dst)
    elif name == "os.remove" and at == "remove" and os.fspath(args[0]) in moved_to:
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(hook)
sys.argv = ["drivestage"] + sys.argv[1:]
from drivestage.entry import main
main()
"""


@pytest.mark.parametrize("new_revision, at, kept", [
    (True, "rename", "v1"), (False, "rename", "v1"), (False, "remove", "v2")])
def test_a_kill_while_a_file_is_replaced_loses_none_of_its_bytes(tmp_path, new_revision, at,
                                                                 kept):
    """v1 was stored and acknowledged; the emulator is killed while it replaces it with v2
    (a new revision, or in place). After a restart the file's bytes are the ones its record
    (md5, size) describes: v1 where the record of v2 was not saved yet. Before, a kill
    between the two moves of a new revision left every download of the file answering 500,
    v1's bytes under a revision's name no record knew (and one in place, v2's bytes under
    v1's md5)."""
    import hashlib
    import io

    from googleapiclient.http import MediaIoBaseUpload

    data_dir = tmp_path / "drive"
    proc = cli_server().popen([at, "emulator", "--port", "0", "--data-dir", str(data_dir)],
                              script=KILLER, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    versions = {"v1": b"v1" * 1000, "v2": b"v2" * 1500}
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()
        service = connect(api_root=url, token="t").service
        file_id = service.files().insert(
            body={"title": "best.pt"}, media_body=MediaIoBaseUpload(
                io.BytesIO(versions["v1"]), "application/octet-stream")).execute()["id"]
        with pytest.raises(OSError):   # (the connection dies with the emulator)
            service.files().update(fileId=file_id, newRevision=new_revision, media_body=(
                MediaIoBaseUpload(io.BytesIO(versions["v2"]), "application/octet-stream"))
            ).execute()
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.communicate()
    data = versions[kept]
    with Emulator(data_dir=str(data_dir)) as emu:
        rec = emu.find("best.pt")
        assert (rec["md5Checksum"], rec["fileSize"]) == (hashlib.md5(data).hexdigest(),
                                                         str(len(data)))
        media = connect(api_root=emu.url, token="t").service.files().get_media(fileId=file_id)
        assert media.execute() == data
        assert len(emu.revisions(file_id)) == 1
        assert sorted(p.name for p in (data_dir / "blobs").iterdir()) == [file_id]


def test_idle_and_unfinished_connections_are_closed_and_clients_reconnect(tmp_path):
    """100 connections that send nothing, and one whose header block never ends, each held a
    thread of the emulator for good. With ``idle_timeout`` (Google's front end closes idle
    connections too) they are closed, and a keep-alive client whose connection was closed
    meanwhile carries on over a new one."""
    with Emulator(data_dir=str(tmp_path / "drive")) as emu:
        emu.idle_timeout = 0.5
        emu.add_file("a.bin", b"a")
        service = connect(api_root=emu.url, token="t").service
        assert len(service.files().list().execute()["items"]) == 1
        idle = [socket.create_connection((emu.host, emu.port), timeout=30) for _ in range(100)]
        endless = socket.create_connection((emu.host, emu.port), timeout=30)
        endless.sendall(b"GET /drive/v2/about HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: 1\r\n")
        for sock in idle + [endless]:
            assert sock.recv(1) == b""      # closed by the emulator, within the socket's 30 s
            sock.close()
        deadline = time.monotonic() + 30
        while emu._server.handlers:        # every thread that served them has ended
            assert time.monotonic() < deadline, len(emu._server.handlers)
            time.sleep(0.05)
        before = len(emu.requests)
        assert len(service.files().list().execute()["items"]) == 1   # (reconnected)
        assert [r.status for r in emu.requests[before:]] == [200]
        assert emu.requests[-1].connection != emu.requests[0].connection


def test_the_request_log_is_bounded_in_bytes_not_only_in_records(emulator):
    """A long ``q`` leaves googleapiclient as a POST form of up to 1 MiB, kept whole in the
    log: 100,000 records of it were 100 GB. The log keeps the newest records within
    ``request_log_bytes`` of text."""
    emulator.request_log_bytes = 128 << 10
    service = connect(api_root=emulator.url, token="t").service
    for i in range(8):      # each about 38 KB of q
        q = " or ".join([f"title = 'x{i}-{n:05d}'" for n in range(1900)])
        assert service.files().list(q=q).execute()["items"] == []
    kept = emulator.requests
    assert sum(len(r.query["q"]) for r in kept) <= 128 << 10
    assert [r.query["q"][:11] for r in kept] == [f"title = 'x{i}" for i in (5, 6, 7)]
    assert all(r.status == 200 and r.kind == "files.list" for r in kept)


#: ``drivestage emulator ...`` killed (SIGKILL) as a finishing resumable upload saves its
#: session's mark of the file it made (``save_session`` called from ``_resumable_done``):
#: the file's record is saved by then, the mark not yet.
KILL_AT_DONE = """
import os, signal, sys, threading

def profile(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "save_session" \\
            and frame.f_back is not None and frame.f_back.f_code.co_name == "_resumable_done":
        os.kill(os.getpid(), signal.SIGKILL)

threading.setprofile(profile)
sys.argv = ["drivestage"] + sys.argv[1:]
from drivestage.entry import main
main()
"""


def test_a_kill_as_a_resumable_upload_completes_leaves_it_to_complete_once(tmp_path):
    """Killed as it made the file of a finished session: after a restart the client's
    status query must get that one file. Before, the session's bytes were gone (moved into
    the file) and its mark not saved: every retry answered 500, and the file no answer named
    stayed, so a client that started over made it twice."""
    import hashlib
    import io

    import httplib2
    from googleapiclient.http import MediaIoBaseUpload

    data_dir, data = tmp_path / "drive", bytes(range(256)) * 1200   # 300 KiB: two chunks
    proc = cli_server().popen(["emulator", "--port", "0", "--data-dir", str(data_dir)],
                              script=KILL_AT_DONE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()
        service = connect(api_root=url, token="t").service
        request = service.files().insert(body={"title": "best.pt"}, media_body=MediaIoBaseUpload(
            io.BytesIO(data), "application/octet-stream", chunksize=256 << 10, resumable=True))
        assert request.next_chunk()[1] is None          # the first chunk: 308
        with pytest.raises(OSError):                     # the last: the emulator dies
            request.next_chunk()
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.communicate()
    with Emulator(data_dir=str(data_dir)) as emu:    # (the session's address, on its port)
        resp, body = httplib2.Http(timeout=30).request(
            request.resumable_uri.replace(url, emu.url), "PUT",
            headers={"Authorization": "Bearer t", "Content-Range": f"bytes */{len(data)}"})
        assert resp.status == 200, body[:300]
        made = json.loads(body)
        assert made["md5Checksum"] == hashlib.md5(data).hexdigest()
        assert [f["id"] for f in emu.files() if f["title"] == "best.pt"] == [made["id"]]
        assert emu.read_bytes(made["id"]) == data
        assert os.listdir(data_dir / "uploads") == []


#: ``drivestage emulator ...`` killed (SIGKILL) as a create writes the record of a file
#: whose bytes it has moved into blobs/ already.
KILL_AT_CREATE = KILL_AT_DONE.replace('"save_session"', '"_put"').replace(
    '"_resumable_done"', '"create"')


def test_a_kill_as_a_file_is_created_leaves_no_bytes_behind(tmp_path):
    """The upload was not answered, so no file: and no 60 KB in blobs/ that no record
    names, for good, either (each such kill took that much disk before)."""
    import io

    from googleapiclient.http import MediaIoBaseUpload

    data_dir = tmp_path / "drive"
    proc = cli_server().popen(["emulator", "--port", "0", "--data-dir", str(data_dir)],
                              script=KILL_AT_CREATE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()
        service = connect(api_root=url, token="t").service
        with pytest.raises(OSError):   # (the connection dies with the emulator)
            service.files().insert(body={"title": "a.bin"}, media_body=MediaIoBaseUpload(
                io.BytesIO(bytes(60000)), "application/octet-stream")).execute()
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.communicate()
    assert len(os.listdir(data_dir / "blobs")) == 1      # (what the kill left)
    with Emulator(data_dir=str(data_dir)) as emu:
        assert emu.files() == []
        assert os.listdir(data_dir / "blobs") == [] and os.listdir(data_dir / "uploads") == []
