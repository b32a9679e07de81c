"""fidelity28: the signed address Drive redirects a download to, reused; https kept.

Google's front end may answer ``alt=media`` with a redirect to a signed address that needs no
token (see tests/test_fidelity27_redirects.py). That address serves the file for a while:
google-api-python-client's ``MediaIoBaseDownload`` reads every chunk of a download from it
(the ``content-location`` httplib2 leaves), and the .NET client's issue 343 calls following
the redirect for each chunk a cost. drivestage asked the API address again for each ranged
read: one more request (0.1-0.3 s on Drive, and a quota unit) per segment. It now reuses the
address for the file's next reads (at most ``Transport.signed_reuse_s`` seconds); a refusal
there (expired) goes back to the API address at once, not as a failed attempt.

A redirect from https to plain http was followed: the signed address grants the bytes to
whoever has it, so the link and the data crossed the network in clear. It is refused now
with one line (http to http, the emulator on loopback, is no downgrade and still followed).
"""
from __future__ import annotations

import os
import shutil

import httplib2
import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)
from _proxy import Proxy
from _tls import self_signed
from drivestage.drive import connect
from drivestage.errors import DownloadRestrictedError

MiB = 1 << 20


def _api(emulator) -> list:
    return [r for r in emulator.requests if r.kind == "media.download"]


def _signed(emulator) -> list:
    return [r for r in emulator.requests if r.path.startswith("/download/")]


def test_a_pull_reuses_the_signed_address_for_its_next_ranged_reads(emulator, env, tmp_path):
    data = os.urandom(3 * MiB + 12345)
    emulator.add_file("VOC/set.bin", data)
    emulator.faults.redirect_media(307)
    code, _, err = _cli.run("pull", "-q", "drive:VOC/set.bin", str(tmp_path / "d"),
                            "--chunk-size", "1MiB", "--jobs", "1")
    assert code == 0, err
    assert (tmp_path / "d/set.bin").read_bytes() == data
    followed = _signed(emulator)
    assert [r.status for r in _api(emulator)] == [307]      # one API request, not one per read
    assert len(followed) >= 4 and all(r.status == 206 for r in followed)
    assert not [r for r in followed if "Authorization" in r.headers]


def test_a_stale_reused_address_goes_back_to_the_api_at_once(emulator, env):
    data = os.urandom(300_000)
    fid = emulator.add_file("VOC/set.bin", data)
    emulator.faults.redirect_media(307)
    store = connect(api_root=emulator.url, token="test-token")
    store.set_retries(1)        # a failed attempt would end the read: a stale link is none
    entry = store.resolve("VOC/set.bin")
    assert store.fetch_range(entry, 0, 1000) == data[:1000]
    assert store.fetch_range(entry, 1000, 2000) == data[1000:2000]
    emulator.expire_download_links()
    assert store.fetch_range(entry, 2000, 3000) == data[2000:3000]
    media = [(r.path.split("/")[1], r.status) for r in emulator.requests
             if r.kind == "media.download" or r.path.startswith("/download/")]
    assert media == [("drive", 307), ("download", 206), ("download", 206),
                     ("download", 403), ("drive", 307), ("download", 206)], media
    assert emulator.find("VOC/set.bin")["id"] == fid


def test_the_reuse_is_bounded_in_time(emulator, env):
    data = os.urandom(5000)
    emulator.add_file("VOC/set.bin", data)
    emulator.faults.redirect_media(302)
    store = connect(api_root=emulator.url, token="test-token")
    store.transport.signed_reuse_s = 0.0     # every link counts as too old to reuse
    entry = store.resolve("VOC/set.bin")
    for at in (0, 1000, 2000):
        assert store.fetch_range(entry, at, at + 1000) == data[at:at + 1000]
    assert [r.status for r in _api(emulator)] == [302, 302, 302]
    assert [r.status for r in _signed(emulator)] == [206, 206, 206]


def test_an_editor_refused_after_the_link_was_handed_out_is_told_so_in_one_line(
        emulator, env, tmp_path):
    """The reused address refuses (downloads turned off for editors meanwhile): the API
    address is asked at once, and its 403 is the message (worded for an editor), not a
    stale link retried."""
    folder = emulator.add_folder("Team", owner="lead@lab.org", shared_with_me="writer")
    emulator.add_shortcut("Team", folder)
    data = os.urandom(3000)
    fid = emulator.add_file("Team/data.bin", data, owner="lead@lab.org")
    emulator.faults.redirect_media(307)
    store = connect(api_root=emulator.url, token="test-token")
    entry = store.resolve("Team/data.bin")
    assert store.fetch_range(entry, 0, 1000) == data[:1000]
    emulator.restrict_download(fid, writers=True)
    with pytest.raises(DownloadRestrictedError) as refused:
        store.fetch_range(entry, 1000, 2000)
    assert str(refused.value).startswith(
        "download drive:Team/data.bin bytes 1000-1999: downloading it is turned off even for "
        "editors like you (HTTP 403 cannotDownloadFile: This file cannot be downloaded by the "
        "user.)"), str(refused.value)
    media = [(r.path.split("/")[1], r.status) for r in emulator.requests
             if r.kind == "media.download" or r.path.startswith("/download/")]
    assert media == [("drive", 307), ("download", 206), ("download", 403), ("drive", 403)]


# --------------------------------------------------------------------------- https -> http

@pytest.fixture
def tls(tmp_path_factory, monkeypatch):
    """A certificate for 127.0.0.1 that this process's httplib2 trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    where = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(where)
    monkeypatch.setattr(httplib2, "CA_CERTS", cert)
    return cert, key


def test_a_redirect_from_https_to_https_is_followed(emulator, env, tls, tmp_path,
                                                     monkeypatch):
    data = os.urandom(MiB + 5)
    emulator.add_file("VOC/set.bin", data)
    with Proxy(emulator.url, tls=tls) as api, Proxy(emulator.url, tls=tls) as media:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", api.url)
        emulator.faults.redirect_media(302, origin=media.url)
        code, _, err = _cli.run("pull", "-q", "drive:VOC/set.bin", str(tmp_path / "d"))
        assert code == 0, err
        assert (tmp_path / "d/set.bin").read_bytes() == data
        assert media.count("GET", "^/download/") >= 1 and api.count("GET", "alt=media") == 1


def test_a_redirect_from_https_to_plain_http_is_refused(emulator, env, tls, tmp_path,
                                                        monkeypatch):
    data = os.urandom(1000)
    emulator.add_file("VOC/set.bin", data)
    with Proxy(emulator.url, tls=tls) as api:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", api.url)
        emulator.faults.redirect_media(307, origin=emulator.url)   # http://127.0.0.1:...
        code, _, err = _cli.run("pull", "-q", "drive:VOC/set.bin", str(tmp_path / "d"))
    assert code == 1
    line = err.strip().splitlines()[-1]
    port = emulator.url.rstrip("/").rsplit(":", 1)[1]
    assert line == (
        "Error: download drive:VOC/set.bin bytes 0-999: the download was redirected from "
        f"https to an unencrypted address (HTTP 307 from {api.url.rstrip('/')} to "
        f"http://127.0.0.1:{port}); not followed: the link and the bytes would cross the "
        "network in clear. Something between you and Drive rewrites its answers (a proxy, a "
        "captive portal, a hotel or company network): pull again on another network, or "
        "check --api-root / DRIVESTAGE_API_ROOT"), line
    assert not _signed(emulator)                       # nothing was sent in clear
    assert api.count("GET", "alt=media") == 1          # not retried
    assert not (tmp_path / "d/set.bin").exists()


def test_parallel_streams_share_the_link(emulator, env, tmp_path):
    """Several streams of one pull read through the one signed address: at most one API
    request each (those that start together may each ask), not one per read."""
    data = os.urandom(8 * MiB + 3)
    emulator.add_file("VOC/set.bin", data)
    emulator.faults.redirect_media(307)
    code, _, err = _cli.run("pull", "drive:VOC/set.bin", str(tmp_path / "d"),
                            "--chunk-size", "1MiB", "--jobs", "4")
    assert code == 0, err
    assert (tmp_path / "d/set.bin").read_bytes() == data
    assert "WARNING" not in err, err
    followed = _signed(emulator)
    assert len(followed) >= 9 and all(r.status == 206 for r in followed)
    assert 1 <= len(_api(emulator)) <= 4, [r.status for r in _api(emulator)]
