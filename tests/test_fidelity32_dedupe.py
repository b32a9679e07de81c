"""fidelity32: dedupe behind a network filter that stops the trash (its 403 web page).

dedupe leaves an item where Drive refuses to trash or move it (someone else's file) and
merges the rest. A network filter's 403 web page is no such refusal: every request after it
meets the same page. In-process CLI against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import io

import _cli
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply
from drivestage.drive import connect
from drivestage.drive.resources import FOLDER_MIME
from test_fidelity32_removal import PAGE


def _blocked(status: int, headers: dict, body: bytes) -> Reply:
    return Reply(403, {"Content-Type": "text/html; charset=utf-8",
                       "Content-Length": str(len(PAGE))}, [PAGE])


def _make(store, title: str, parent: str, data: bytes | None = None) -> str:
    meta = {"title": title, "parents": [{"id": parent}]}
    if data is None:
        meta["mimeType"] = FOLDER_MIME
    f = store.drive.CreateFile(meta)
    if data is not None:
        f.content = io.BytesIO(data)
    f.Upload()
    return f["id"]


def test_dedupe_behind_a_filter_that_stops_the_trash(emulator, proxy, liar_env):
    store = connect(api_root=emulator.url, token="test-token")
    root = emulator.add_folder("runs")
    old = _make(store, "exp", root)
    new = _make(store, "exp", root)
    _make(store, "results.csv", old, b"same")
    copies = [_make(store, f"copy{i}.csv", new, b"same") for i in range(3)]
    for i, c in enumerate(copies):
        _make(store, f"copy{i}.csv", old, b"same")
    proxy.on("POST", r"/trash", _blocked, forward=False)
    proxy.on("POST", r"^/batch/", _blocked, forward=False)
    code, out, err = _cli.run("dedupe", "drive:runs/exp")
    line = one_error_line(code, err)
    assert "holds another item of that name" not in line, line
    assert "by something between here and Drive, not by Drive" in line, line
    assert line.startswith("Error: trash drive:runs/exp/copy0.csv: refused (HTTP 403) by "
                           "something between here and Drive"), line
    assert proxy.count("POST", r"/trash") == 1, line   # stopped at the first page
    assert not any(f["labels"]["trashed"] for f in emulator.files())
