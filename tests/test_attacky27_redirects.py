"""attacky27: a lying server's redirect of a download (drive/transport.py follows up to five).

A ``Location`` that is not a web address was sent on as an HTTP request anyway (an HTTP GET to
an ``ftp://`` host, to an empty host for ``file:``/``data:``/``mailto:``), retried eight times
as a lost connection (a space, a port that is not a number), or ended the pull in a traceback
(an unclosed ``[``, a port beyond 65535, a non-ASCII path). Now none is followed: one line,
not retried, the address shown escaped, nothing kept under the final name. A redirect to a
host that does not resolve (a firewall that lets only Drive's API through) said
``cannot stage … : Name or service not known``; now it names that host.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line, renders, shown
from drivestage.cli import cli

HEADING = "the server answered with redirects that lead nowhere"


def pull(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["pull", "-q", *args], catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.mark.parametrize("location, shown_as", [
    ("file:///etc/passwd", "'file:///etc/passwd'"),
    ("ftp://127.0.0.1:21/x", "'ftp://127.0.0.1:21/x'"),
    ("data:text/plain,hello", "'data:text/plain,hello'"),
    ("http://[::1/x", "'http://[::1/x'"),
    ("http://127.0.0.1:99999/x", "'http://127.0.0.1:99999/x'"),
    ("http://127.0.0.1:abc/x", "'http://127.0.0.1:abc/x'"),
    ("http://u:p@127.0.0.1:1/x", "'http://***@127.0.0.1:1/x'"),   # (no password shown)
    ("ftp://h/f?qk=grant#x", "'ftp://h/f' (its query left out)"),  # (nor a signed grant)
    ("/drive/v2/a b", "'/drive/v2/a b'"),
    ("/drive/\u00e9t\u00e9", "'/drive/\\xe9t\\xe9'"),
    ("/x\x1b[2Jy", "'/x\\x1b[2Jy'"),
])
@renders(HEADING)
def test_a_redirect_to_what_is_not_a_web_address_is_not_followed(emulator, env, tmp_path,
                                                                 location, shown_as):
    emulator.add_file("VOC/set.bin", b"x" * 1000)
    emulator.faults.inject("GET", r"alt=media", status=302, times=None,
                           headers={"Location": location})
    code, err = pull("drive:VOC/set.bin", str(tmp_path / "d"))
    assert code == 1
    line = error_line(err)
    assert line == (
        "Error: download drive:VOC/set.bin bytes 0-999: the server answered with redirects "
        "that lead nowhere (a loop, or one without a web address: HTTP 302 to "
        f"{shown_as}, not a web address); Drive redirects at most a download, once. Check "
        "--api-root / DRIVESTAGE_API_ROOT and any proxy between you and Drive"), line
    shown(HEADING, line)
    assert "retry" not in err                       # one answer, asked once
    assert len([r for r in emulator.requests if r.query.get("alt") == "media"]) == 1
    assert not (tmp_path / "d/set.bin").exists()


@renders("cannot reach the server (")
def test_a_redirect_to_a_host_that_does_not_resolve_names_it(emulator, env, tmp_path):
    emulator.add_file("VOC/set.bin", b"x" * 1000)
    emulator.faults.inject("GET", r"alt=media", status=307, times=None,
                           headers={"Location": "http://signed.invalid/download/x?qk=1"})
    code, err = pull("drive:VOC/set.bin", str(tmp_path / "d"))
    assert code == 1
    line = error_line(err)
    assert line.startswith("Error: download drive:VOC/set.bin bytes 0-999: cannot reach the "
                           "server (signed.invalid, where the download was redirected: "), line
    shown("cannot reach the server (", line)
    assert not (tmp_path / "d/set.bin").exists()


def test_a_relative_redirect_on_the_same_server_is_still_followed(emulator, env, tmp_path):
    """Guard: the check refuses no address Drive's signed links use."""
    data = b"y" * 5000
    emulator.add_file("VOC/set.bin", data)
    emulator.faults.redirect_media(307, times=1)
    code, err = pull("drive:VOC/set.bin", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d/set.bin").read_bytes() == data
