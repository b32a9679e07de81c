"""What one JSON request body may cost the emulator (emul48). Its bytes were bounded (1 MiB)
but parsing multiplied them: 1 MiB of ``{"x":[{},{},...]}`` took 27 MB of Python objects
(1 MiB of ``[[],[],...]`` 25 MB), per request being served. Now the body's strings and
structural characters are counted first (at most 10,000: Drive metadata holds a few hundred)
and its nesting (at most 32 levels); past either it is refused, 400 ``badRequest``, without
being parsed. A method override's form (a long ``q`` googleapiclient sends as a POST) holds
at most 100 parameters."""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys

from drivestage.emulator.json_body import MAX_JSON_DEPTH, MAX_JSON_TOKENS

AUTH = {"Authorization": "Bearer t", "Content-Type": "application/json"}
TOO_MANY = (f"The request's JSON holds more than {MAX_JSON_TOKENS:,} strings, brackets and "
            "separators (Drive metadata holds a few hundred: at most 100 properties of 124 "
            "bytes).")

# Run alone in a child: the traced peak is the emulator's serving of one request (and the
# client's reading of the answer), nothing else the test process holds.
_PEAK = r"""
import http.client, json, sys, tempfile, tracemalloc
from drivestage.emulator import Emulator
auth = {"Authorization": "Bearer t", "Content-Type": "application/json"}
if sys.argv[2] == "form":   # a long files.list sent as a form (googleapiclient's way)
    body = b"a=&" * ((1 << 20) // 3)
    auth.update({"Content-Type": "application/x-www-form-urlencoded",
                 "X-HTTP-Method-Override": "GET"})
else:
    body = b'{"x":[' + b",".join([b"{}"] * ((1 << 20) // 3 - 4)) + b"]}"
with Emulator(data_dir=tempfile.mkdtemp()) as emu:
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=60)
    conn.request("GET", "/drive/v2/about", headers={"Authorization": "Bearer t"})
    conn.getresponse().read()
    tracemalloc.start()
    conn.request("POST", sys.argv[1], body, auth)
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps([len(body), peak, resp.status, answer.get("error"), len(emu.files())]))
"""


def _peak(target: str, kind: str = "json") -> tuple[int, int, int, dict, int]:
    out = subprocess.run([sys.executable, "-c", _PEAK, target, kind], capture_output=True,
                         text=True, timeout=120, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    return tuple(json.loads(out.stdout.splitlines()[-1]))


def test_a_1_mib_body_of_small_objects_is_refused_before_it_is_parsed():
    """The worst body the byte cap let through (a third of a million empty objects): 27 MB
    traced on the old code (200, a file made); now at most twice the body, refused."""
    for target in ("/drive/v2/files", "/upload/drive/v2/files?uploadType=resumable"):
        size, peak, status, error, files = _peak(target)
        assert size > 1_000_000
        assert (status, files) == (400, 0), (target, status, error)
        assert error["errors"] == [{"domain": "global", "reason": "badRequest",
                                    "message": TOO_MANY}]
        assert peak < 2 * size, f"{target}: {peak:,} bytes traced for a {size:,}-byte body"


def test_a_1_mib_form_of_parameters_is_refused_before_it_is_parsed():
    """The same for a method override's form (a long ``q`` sent as a POST): 1 MiB of
    ``a=&a=&...`` took 43 MB to parse into parameters; now at most 100 are parsed."""
    size, peak, status, error, _ = _peak("/drive/v2/files", "form")
    assert (status, error["errors"]) == (400, [{
        "domain": "global", "reason": "badRequest",
        "message": "The request's form holds more than 100 parameters."}])
    assert peak < 3 * size, f"{peak:,} bytes traced for a {size:,}-byte form"


def _ask(emulator, method: str, target: str, body: bytes) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(emulator.host, emulator.port, timeout=20)
    try:
        conn.request(method, target, body, AUTH)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_bounds_on_tokens_and_nesting_leave_drive_sized_metadata_alone(emulator):
    """At the bounds a body is taken; one past, refused with the reason and words above. A
    comma or bracket inside a string is no token (a long CSV description is one string)."""
    at = b'{"title":"a.txt","description":"' + b"[,{:]}" * 20_000 + b'","x":[' + \
        b",".join([b"0"] * (MAX_JSON_TOKENS - 13)) + b"]}"
    status, file = _ask(emulator, "POST", "/drive/v2/files", at)
    assert status == 200, file
    assert file["description"] == "[,{:]}" * 20_000
    over = at.replace(b'"x":[', b'"x":[0,', 1)
    assert _ask(emulator, "POST", "/drive/v2/files", over) == (400, {"error": {
        "errors": [{"domain": "global", "reason": "badRequest", "message": TOO_MANY}],
        "code": 400, "message": TOO_MANY}})

    def nested(depth: int) -> bytes:   # the object itself is one level
        return b'{"title":"b.txt","x":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

    assert _ask(emulator, "POST", "/drive/v2/files", nested(MAX_JSON_DEPTH))[0] == 200
    status, answer = _ask(emulator, "PUT", f"/drive/v2/files/{file['id']}",
                          nested(MAX_JSON_DEPTH + 1))
    assert (status, answer["error"]["errors"][0]["reason"], answer["error"]["message"]) == \
        (400, "badRequest", "The request is nested too deeply.")
    assert sorted(f["title"] for f in emulator.files()) == ["a.txt", "b.txt"]
    # Properties at Drive's own limits (30 public, 124 bytes each) pass untouched.
    props = [{"key": f"k{i:02d}", "value": "v" * 120, "visibility": "PUBLIC"} for i in range(30)]
    status, made = _ask(emulator, "POST", "/drive/v2/files",
                        json.dumps({"title": "c.txt", "properties": props}).encode())
    assert status == 200 and len(made["properties"]) == 30, made


def test_a_multipart_metadata_part_is_bounded_the_same_way(emulator):
    body = (b"--B\r\nContent-Type: application/json\r\n\r\n{\"title\":\"m.bin\",\"x\":"
            + b"[" * (MAX_JSON_DEPTH + 5) + b"]" * (MAX_JSON_DEPTH + 5)
            + b"}\r\n--B\r\nContent-Type: application/octet-stream\r\n\r\nabc\r\n--B--\r\n")
    conn = http.client.HTTPConnection(emulator.host, emulator.port, timeout=20)
    conn.request("POST", "/upload/drive/v2/files?uploadType=multipart", body,
                 {"Authorization": "Bearer t",
                  "Content-Type": "multipart/related; boundary=B"})
    resp = conn.getresponse()
    answer = json.loads(resp.read())["error"]
    conn.close()
    assert (resp.status, answer["errors"][0]["reason"], answer["message"]) == \
        (400, "badRequest", "The request is nested too deeply.")
    assert emulator.files() == []
