"""docs/troubleshooting.md messages of attackhs31: a 403 that is a web page, not Drive's
answer.

A company's or school's network filter (a proxy or firewall that blocks "cloud storage")
answers a request to www.googleapis.com with its own "Access Denied" page, HTTP 403; so may
Google's front end when it takes traffic for automated queries. drivestage said "permission
denied (HTTP 403: <!DOCTYPE html> <html> <head> ...). Check that this account can access
the file (sharing settings, shared drive membership)": advice about sharing for a refusal
that no sharing setting can lift, with the page's markup in the line. Now the line says who
refused (not Drive), quotes the page's words and says what to do. Not retried: the filter
answers the same. In-process CLI against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import pytest

import _cli
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _messages import renders, shown
from _proxy import Reply

PAGE = (b"<!DOCTYPE html><html><head><title>Access Denied</title></head><body><h1>Access "
        b"Denied</h1><p>The site you are trying to reach is blocked by your organization's "
        b"policy (Category: Cloud Storage).</p></body></html>")


def _blocked(status: int, headers: dict, body: bytes) -> Reply:
    return Reply(403, {"Content-Type": "text/html; charset=utf-8",
                       "Content-Length": str(len(PAGE))}, [PAGE])


def _status(status: int):
    def mutate(old_status: int, headers: dict, body: bytes) -> Reply:
        return Reply(status, _blocked(old_status, headers, body).headers, [PAGE])
    return mutate


@renders("by something between here and Drive, not by Drive")
@pytest.mark.parametrize("blocked,status", [(r"^/drive/v2/files\?", 403), (r"alt=media", 403),
                                            (r"^/drive/v2/files\?", 401),
                                            (r"^/drive/v2/files\?", 407)],
                         ids=["listing", "download", "401", "407"])
def test_a_403_page_from_a_network_filter_is_not_called_a_sharing_problem(
        emulator, proxy, liar_env, tmp_path, blocked, status):
    """(And a 401 or 407 page: "Drive refused the credentials ... Run `drivestage auth
    login`", "Drive answered HTTP 407: <html> ...".)"""
    emulator.add_file("VOC/a.bin", b"a" * 10)
    proxy.on("GET", blocked, _status(status))
    code, out, err = _cli.run("pull", "drive:VOC/a.bin", str(tmp_path / "d"))
    line = one_error_line(code, err)
    assert "sharing settings" not in line and "<" not in line, line
    assert "auth login" not in line, line
    assert (f"refused (HTTP {status}) by something between here and Drive, not by Drive: its "
            "answer is a web page ('Access Denied Access Denied The site you are trying to "
            "reach is blocked by your organization's policy") in line, line
    assert line.endswith("Try another network, or ask its administrators to allow "
                         "www.googleapis.com"), line
    assert proxy.count("GET", blocked) == 1   # not retried
    shown("by something between here and Drive, not by Drive", line)
