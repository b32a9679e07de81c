"""fidelity27: media downloads answered with a redirect.

Google's API front end may answer ``alt=media`` with a redirect to a signed address on
``*.googleusercontent.com`` that needs no token: a 2020 report (google-api-javascript-client
issue 600) shows ``content.googleapis.com`` answering a Drive ``alt=media`` with ``307`` to
``…-apidata.googleusercontent.com/download/drive/v3/files/<id>?qk=…``; Google's own .NET
client issue 343 (2013) says "the media downloader follows redirect (307) for each chunk";
google-api-python-client's ``MediaIoBaseDownload`` takes its next chunks from the
``content-location`` httplib2 leaves after following one. httplib2 (PyDrive2, googleapiclient)
follows such a redirect and drops ``Authorization``; drivestage's own streaming reader
(http.client) followed none and a pull stopped with ``Drive answered HTTP 307``.

The emulator models it (``faults.redirect_media``); a pull follows the redirect with neither
the token nor a resource key, and a loop of redirects ends in one line.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.error
import urllib.request

import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect

MiB = 1 << 20
TOKEN = "test-token"


def _get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    class _NoFollow(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(_NoFollow)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {})) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


# --------------------------------------------------------------------------- the emulator

def test_the_emulator_redirects_a_download_to_a_link_that_needs_no_token(emulator, env):
    data = os.urandom(1000)
    fid = emulator.add_file("A/x.bin", data)
    emulator.faults.redirect_media(307, times=1)
    status, headers, _ = _get(f"{emulator.url}drive/v2/files/{fid}?alt=media",
                              {"Authorization": f"Bearer {TOKEN}"})
    assert status == 307
    link = headers["Location"]
    assert link.startswith(f"{emulator.url}download/drive/v2/files/{fid}?qk=")
    status, headers, body = _get(link, {"Range": "bytes=10-19"})   # no token
    assert (status, headers["Content-Range"], body) == (206, "bytes 10-19/1000", data[10:20])
    # The next download is answered at the API address (times=1), and a stale link is refused.
    status, _, body = _get(f"{emulator.url}drive/v2/files/{fid}?alt=media",
                           {"Authorization": f"Bearer {TOKEN}"})
    assert (status, body) == (200, data)
    emulator.expire_download_links()
    status, _, body = _get(link)
    assert status == 403 and json.loads(body)["error"]["errors"][0]["reason"] == "forbidden"


def test_redirect_media_over_the_control_api(emulator, env):
    fid = emulator.add_file("A/x.bin", b"abc")
    req = urllib.request.Request(f"{emulator.url}_emulator/faults", method="POST",
                                 data=json.dumps({"kind": "redirect_media", "status": 302,
                                                  "times": 2}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
    assert emulator.faults.describe()["redirect_media"] == {"status": 302, "origin": None,
                                                           "times": 2}
    assert _get(f"{emulator.url}drive/v2/files/{fid}?alt=media",
                {"Authorization": f"Bearer {TOKEN}"})[0] == 302
    emulator.faults.clear()
    assert _get(f"{emulator.url}drive/v2/files/{fid}?alt=media",
                {"Authorization": f"Bearer {TOKEN}"})[0] == 200


def test_a_refused_download_is_refused_at_the_api_address_not_redirected(emulator, env):
    fid = emulator.add_file("A/x.bin", b"x" * 100, abusive=True)
    emulator.faults.redirect_media(302)
    status, _, body = _get(f"{emulator.url}drive/v2/files/{fid}?alt=media",
                           {"Authorization": f"Bearer {TOKEN}"})
    assert status == 403
    assert json.loads(body)["error"]["errors"][0]["reason"] == "cannotDownloadAbusiveFile"
    assert _get(f"{emulator.url}drive/v2/files/{fid}?alt=media")[0] == 401   # no token


def test_pydrive2_and_googleapiclient_follow_the_redirect(emulator, env, tmp_path):
    """The real stack copes: httplib2 follows 302/307 for a GET (without the token)."""
    from googleapiclient.http import MediaIoBaseDownload

    data = os.urandom(3 * MiB + 5)
    fid = emulator.add_file("A/x.bin", data)
    emulator.faults.redirect_media(307)
    store = connect(api_root=emulator.url, token=TOKEN)
    store.drive.CreateFile({"id": fid}).GetContentFile(str(tmp_path / "x.bin"))
    assert (tmp_path / "x.bin").read_bytes() == data
    out = io.BytesIO()
    down = MediaIoBaseDownload(out, store.transport.service.files().get_media(fileId=fid),
                               chunksize=MiB)
    done = False
    while not done:
        _, done = down.next_chunk()
    assert out.getvalue() == data
    followed = [r for r in emulator.requests if r.path.startswith("/download/")]
    assert len(followed) >= 5 and all(r.status in (200, 206) for r in followed)
    assert not [r for r in followed if "Authorization" in r.headers]


# --------------------------------------------------------------------------- drivestage

@pytest.mark.parametrize("status", [302, 307])
def test_a_pull_follows_a_redirected_download(emulator, env, tmp_path, status):
    data = os.urandom(3 * MiB + 12345)
    emulator.add_file("VOC/set.bin", data)
    emulator.faults.redirect_media(status)
    code, _, err = _cli.run("pull", "-q", "drive:VOC/set.bin", str(tmp_path / "d"),
                            "--chunk-size", "1MiB")
    assert code == 0, err
    assert (tmp_path / "d/set.bin").read_bytes() == data
    api = [r for r in emulator.requests if r.kind == "media.download"]
    followed = [r for r in emulator.requests if r.path.startswith("/download/")]
    assert api and all(r.status == status for r in api)
    assert len(followed) >= 4 and all(r.status == 206 for r in followed)
    # The signed link is reused for the next ranged reads (fidelity28): one API request.
    assert len(api) == 1


def test_a_redirect_to_another_origin_gets_neither_the_token_nor_the_keys(emulator, env,
                                                                          tmp_path):
    data = os.urandom(MiB + 7)
    fid = emulator.add_file("Shared/w.bin", data, owner="teacher@school.edu",
                            resource_key="0-secretKEY")
    emulator.share_link(fid, role="reader", resource_key="0-secretKEY")
    elsewhere = emulator.url.replace("127.0.0.1", "localhost")
    emulator.faults.redirect_media(307, origin=elsewhere)
    code, _, err = _cli.run("pull", "-q", f"https://drive.google.com/file/d/{fid}/view?"
                            "resourcekey=0-secretKEY", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d/w.bin").read_bytes() == data
    assert hashlib.md5((tmp_path / "d/w.bin").read_bytes()).hexdigest() == \
        [f for f in emulator.files() if f["id"] == fid][0]["md5Checksum"]
    followed = [r for r in emulator.requests if r.path.startswith("/download/")]
    assert followed
    assert not [r for r in followed if "Authorization" in r.headers
                or "X-Goog-Drive-Resource-Keys" in r.headers]


def test_a_stale_link_is_asked_for_again(emulator, env, tmp_path):
    """The signed address refuses (it expired between the redirect and the read): the read
    starts again at the API address, which hands out a fresh link."""
    data = os.urandom(MiB)
    fid = emulator.add_file("VOC/set.bin", data)
    emulator.faults.redirect_media(307)
    emulator.faults.inject("GET", rf"^/download/drive/v2/files/{fid}\?", status=403,
                           reason="forbidden", message="The download link has expired.")
    code, _, err = _cli.run("pull", "-q", "drive:VOC/set.bin", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d/set.bin").read_bytes() == data
    assert [r.status for r in emulator.requests if r.path.startswith("/download/")] == \
        [403, 206]


def test_redirects_in_a_loop_end_the_pull_with_one_line(emulator, env, tmp_path):
    fid = emulator.add_file("VOC/set.bin", b"x" * 1000)
    emulator.faults.inject("GET", r"alt=media", status=302, times=None,
                           headers={"Location": f"/drive/v2/files/{fid}?alt=media&again=1"})
    code, _, err = _cli.run("pull", "-q", "drive:VOC/set.bin", str(tmp_path / "d"))
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: download drive:VOC/set.bin bytes 0-999: the server answered "
                           "with redirects that lead nowhere"), line
    assert len([r for r in emulator.requests if r.query.get("alt") == "media"]) == 6   # 5 followed, once
    assert not (tmp_path / "d/set.bin").exists()
