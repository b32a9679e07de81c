"""docs/troubleshooting.md messages of fidelity32: Google's own "We're sorry..." page (automated queries) on the API endpoint.

Google's front end itself answers www.googleapis.com with its "Sorry..." page when it takes
the traffic for automated queries: HTTP 403 (google-drive-ruby issue 368, a files.list;
googleworkspace/python-samples issue 1424, a get_media download) or HTTP 429 (prasmussen/gdrive
issue 667, an upload; Sam-Max/rcmltb issue 95). That page is Google's, not a network filter's:
drivestage said "refused (HTTP 403) by something between here and Drive, not by Drive", and
after the retries of a 429 it quoted the page's markup. In-process CLI against the emulator
behind tests/_proxy.py.
"""
from __future__ import annotations

import pytest

import _cli
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _messages import renders, shown
from _proxy import Reply

#: The page as users pasted it from real answers (gdrive issue 667), shortened.
SORRY = (b'<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"/>'
         b'<title>Sorry...</title><style> body { font-family: verdana, arial, sans-serif; '
         b'background-color: #fff; color: #000; }</style></head><body><div><table><tr><td><b>'
         b'<font face=sans-serif size=10><font color=#4285f4>G</font><font color=#ea4335>o'
         b'</font><font color=#fbbc05>o</font><font color=#4285f4>g</font><font color=#34a853>'
         b'l</font><font color=#ea4335>e</font></font></b></td><td style="text-align: left; '
         b'vertical-align: bottom; padding-bottom: 15px; width: 50%"><div style="border-bottom:'
         b' 1px solid #dfdfdf;">Sorry...</div></td></tr></table></div><div style="margin-left: '
         b"4em;\"><h1>We're sorry...</h1><p>... but your computer or network may be sending "
         b"automated queries. To protect our users, we can't process your request right now."
         b'</p></div><div style="margin-left: 4em;">See <a href="https://support.google.com/'
         b'websearch/answer/86640">Google Help</a> for more information.<br/><br/></div></body>'
         b'</html>')


def _sorry(status: int):
    def mutate(old_status: int, headers: dict, body: bytes) -> Reply:
        return Reply(status, {"Content-Type": "text/html; charset=UTF-8",
                              "Content-Length": str(len(SORRY))}, [SORRY])
    return mutate


@renders("Google took this network's requests for automated queries")
@pytest.mark.parametrize("blocked,status", [(r"^/drive/v2/files\?", 403), (r"alt=media", 403),
                                            (r"alt=media", 429)],
                         ids=["listing-403", "download-403", "download-429"])
def test_googles_sorry_page_is_named_as_googles(emulator, proxy, liar_env, tmp_path, blocked,
                                                status):
    emulator.add_file("VOC/a.bin", b"a" * 10)
    proxy.on("GET", blocked, _sorry(status))
    code, out, err = _cli.run("pull", "drive:VOC/a.bin", str(tmp_path / "d"))
    line = one_error_line(code, err)
    assert "<" not in line and "between here and Drive" not in line, line
    assert "sharing settings" not in line and "auth login" not in line, line
    assert (f"refused (HTTP {status}) by Google itself: Google took this network's requests "
            "for automated queries ('We're sorry... ... but your computer or network may be "
            "sending automated queries.") in line, line
    assert line.endswith("Not a Drive permission: no sharing setting or login changes it. "
                         "Google lifts such a block by itself, usually within a day: run the "
                         "command again later, or from another network"), line
    assert proxy.count("GET", blocked) == (1 if status == 403 else 3), line
    assert not (tmp_path / "d" / "a.bin").exists()   # no file under its final name
    shown("Google took this network's requests for automated queries", line)


def test_googles_sorry_page_on_an_upload(emulator, proxy, liar_env, tmp_path):
    """As gdrive issue 667 met it: a 429 "Sorry..." page to the upload's start. Retried as
    any 429, then said as Google's block; nothing is made on Drive."""
    src = tmp_path / "run"
    src.mkdir()
    (src / "a.pt").write_bytes(b"w" * 1000)
    emulator.add_folder("runs")
    proxy.on("POST", r"^/upload/", _sorry(429), forward=False)
    code, out, err = _cli.run("push", str(src), "drive:runs/")
    line = one_error_line(code, err)
    assert "<" not in line, line
    assert "refused (HTTP 429) by Google itself: Google took this network's requests for " \
           "automated queries" in line, line
    assert proxy.count("POST", r"^/upload/") == 3
    assert emulator.find("a.pt") is None


def test_googles_sorry_page_halts_a_push(emulator, proxy, liar_env, tmp_path):
    """The block is the whole network's: a push of three files starts no other upload after
    the first one met the page (before, each file went through every retry: with the
    default 8 attempts, about 95 s of backoff per file)."""
    src = tmp_path / "run"
    src.mkdir()
    for i in range(3):
        (src / f"e{i}.pt").write_bytes(bytes([i]) * 1000)
    emulator.add_folder("runs")
    proxy.on("POST", r"^/upload/", _sorry(429), forward=False)
    code, out, err = _cli.run("push", str(src), "drive:runs/", "--jobs", "1")
    line = one_error_line(code, err)
    assert "by Google itself: Google took this network's requests for automated queries" \
        in line, line
    assert proxy.count("POST", r"^/upload/") == 3   # one file's attempts, then no other
