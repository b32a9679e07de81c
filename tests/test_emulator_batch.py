"""Drive's batch endpoint in the emulator, driven by googleapiclient's own batch object over
HTTP (and by hand where the wire format itself is the point): calls in one multipart/mixed
request, answers matched by Content-ID, each with its own status, at most 100 calls, each
call logged and charged as a request, faults matching a call applying to that call."""
from __future__ import annotations

import httplib2
import pytest
from googleapiclient.errors import HttpError

from _drive_clients import drive_service

BOUNDARY = "b0und4ry"


def _seed(emulator, n: int) -> list[str]:
    return [emulator.add_file(f"ckpt/e{i:03d}.pt", b"x%d" % i) for i in range(n)]


def _run(service, requests):
    """Execute ``requests`` in one googleapiclient batch: {request id: (response, error)}."""
    out = {}
    batch = service.new_batch_http_request(
        callback=lambda rid, res, exc: out.__setitem__(rid, (res, exc)))
    for i, req in enumerate(requests):
        batch.add(req, request_id=str(i))
    batch.execute()
    return out


def _raw(emulator, parts: list[tuple[str, str]], auth: bool = True):
    """POST a hand-made batch: ``parts`` are (Content-ID, embedded request text)."""
    body = "".join(f"--{BOUNDARY}\r\nContent-Type: application/http\r\nContent-ID: {cid}\r\n\r\n"
                   f"{text}\r\n" for cid, text in parts) + f"--{BOUNDARY}--\r\n"
    headers = {"Content-Type": f"multipart/mixed; boundary={BOUNDARY}"}
    if auth:
        headers["Authorization"] = "Bearer test-token"
    return httplib2.Http().request(f"{emulator.url}batch/drive/v2", "POST", body=body,
                                   headers=headers)


def test_batch_answers_each_call_with_its_own_status(emulator):
    ids = _seed(emulator, 2)
    service = drive_service(emulator.url)
    got = _run(service, [service.files().get(fileId=ids[0]), service.files().get(fileId="nope"),
                         service.files().get(fileId=ids[1])])
    assert got["0"][0]["title"] == "e000.pt" and got["2"][0]["title"] == "e001.pt"
    assert got["1"][0] is None and got["1"][1].resp.status == 404
    outer = [r for r in emulator.requests if r.kind == "batch"]
    parts = [r for r in emulator.requests if r.in_batch]
    assert len(outer) == 1 and outer[0].status == 200
    assert [(r.kind, r.status) for r in parts] == [("files.get", 200), ("files.get", 404),
                                                   ("files.get", 200)]
    assert emulator.api_calls("files.get") == 3   # each call counts as a request
    assert outer[0].units == 0 and all(r.units == 5 for r in parts)


def test_batch_deletes_and_content_ids_are_answered_as_response_ids(emulator):
    ids = _seed(emulator, 2)
    resp, content = _raw(emulator, [("<a1>", f"DELETE /drive/v2/files/{ids[1]} HTTP/1.1"),
                                    ("<b2>", f"GET /drive/v2/files/{ids[0]}?fields=title HTTP/1.1")])
    assert resp.status == 200 and resp["content-type"].startswith("multipart/mixed; boundary=")
    text = content.decode()
    assert text.index("Content-ID: <response-a1>") < text.index("HTTP/1.1 204") < \
        text.index("Content-ID: <response-b2>") < text.index('{"title": "e000.pt"}')
    assert emulator.api_calls("files.delete") == 1
    assert [f["id"] for f in emulator.files() if f["title"].endswith(".pt")] == [ids[0]]


def test_a_call_may_name_its_url_whole_and_leave_out_the_http_version(emulator):
    """As hand-made batches do (Apps Script's UrlFetchApp examples): ``GET https://host/..``."""
    ids = _seed(emulator, 1)
    _, content = _raw(emulator, [("<1>", f"GET {emulator.url}drive/v2/files/{ids[0]}?fields=title")])
    assert b"HTTP/1.1 200" in content and b'{"title": "e000.pt"}' in content


def test_parts_take_the_outer_headers_unless_they_have_their_own(emulator):
    ids = _seed(emulator, 1)
    _, content = _raw(emulator, [("<1>", f"GET /drive/v2/files/{ids[0]} HTTP/1.1")])
    assert b"HTTP/1.1 200" in content
    _, content = _raw(emulator, [("<1>", f"GET /drive/v2/files/{ids[0]} HTTP/1.1")], auth=False)
    assert b"HTTP/1.1 401" in content


def test_more_than_100_calls_is_refused_whole(emulator):
    ids = _seed(emulator, 101)
    service = drive_service(emulator.url)
    with pytest.raises(HttpError) as err:
        _run(service, [service.files().delete(fileId=i) for i in ids])
    assert err.value.resp.status == 400
    assert emulator.api_calls("files.delete") == 0
    assert len([f for f in emulator.files() if f["title"].endswith(".pt")]) == 101


def test_a_fault_matching_one_call_fails_that_call_inside_a_200(emulator):
    ids = _seed(emulator, 3)
    emulator.faults.inject("GET", ids[1], status=403, reason="rateLimitExceeded")
    emulator.faults.inject("GET", ids[2], status=500)
    service = drive_service(emulator.url)
    got = _run(service, [service.files().get(fileId=i) for i in ids])
    assert got["0"][1] is None
    assert got["1"][1].resp.status == 403 and b"rateLimitExceeded" in got["1"][1].content
    assert got["2"][1].resp.status == 500
    assert [r.status for r in emulator.requests if r.kind == "batch"] == [200]


def test_a_fault_on_the_batch_itself_fails_it_whole(emulator):
    ids = _seed(emulator, 2)
    emulator.faults.inject("POST", r"/batch/", status=503)
    service = drive_service(emulator.url)
    with pytest.raises(HttpError) as err:
        _run(service, [service.files().delete(fileId=i) for i in ids])
    assert err.value.resp.status == 503
    assert emulator.api_calls("files.delete") == 0


def test_media_and_nested_batches_are_refused_per_call(emulator):
    ids = _seed(emulator, 1)
    _, content = _raw(emulator, [("<1>", f"GET /drive/v2/files/{ids[0]}?alt=media HTTP/1.1"),
                                 ("<2>", "POST /batch/drive/v2 HTTP/1.1"),
                                 ("<3>", f"GET /drive/v2/files/{ids[0]} HTTP/1.1"),
                                 ("<4>", "")])
    text = content.decode()
    assert text.count("HTTP/1.1 400") == 3 and text.count("HTTP/1.1 200") == 1
    assert emulator.api_calls("media.download") == 0


def test_a_batch_that_is_not_multipart_is_a_400(emulator):
    resp, _ = httplib2.Http().request(f"{emulator.url}batch/drive/v2", "POST", body="{}",
                                      headers={"Content-Type": "application/json",
                                               "Authorization": "Bearer test-token"})
    assert resp.status == 400


def test_a_drop_rule_matching_a_call_is_left_for_a_request_of_its_own(emulator):
    """A call in a batch has no connection of its own to reset: the rule waits."""
    ids = _seed(emulator, 2)
    rule = emulator.faults.drop("GET", ids[0])
    service = drive_service(emulator.url)
    got = _run(service, [service.files().get(fileId=i) for i in ids])
    assert got["0"][1] is None and got["1"][1] is None
    assert rule.times == 1 and emulator.faults.describe()["rules"]


def test_a_latency_rule_matching_a_call_holds_the_batch_answer(emulator):
    ids = _seed(emulator, 2)
    emulator.faults.latency(0.2, "GET", ids[1])
    service = drive_service(emulator.url)
    _run(service, [service.files().get(fileId=i) for i in ids])
    outer = [r for r in emulator.requests if r.kind == "batch"]
    assert outer[0].duration >= 0.2
