"""attackpush41: a server that carries a removal out, then closes the connection without an
answer (no status line: a front end or proxy hanging up). httplib2 answers that on its first
try by sending the request again at once, unseen by drivestage (it takes it for a kept-alive
connection gone stale): the retry went without the push's guard (guards40 asks it before
each try: a lease lost meanwhile must remove nothing more), and it counted as a first try,
so edges40's read after a retry's error was skipped: an item taken out of a folder (Drive
did it) failed the push on the resend's 400. Now such a request fails, and drivestage's own
retry loop sends it again: guarded and counted.

The real PyDrive2 stack; a proxy in front of the emulator forwards the request, then its
handler dies (the connection closes, nothing sent back)."""
from __future__ import annotations

import logging

import pytest

from _cli import run
from _guarded_runs import titles_in
from _proxy import Proxy
from test_attackout38_replace import TAKEN, _world


class _HangUp(Exception):
    """Raised in the proxy's handler: the connection closes with no answer at all."""


def _hang_up(status: int, headers: dict, body: bytes):
    raise _HangUp("after the emulator did it")


def _removals(proxy: Proxy) -> int:
    return sum(1 for m, p in list(proxy.requests)
               if m == "DELETE" or p.startswith("/batch") or "/trash" in p)


@pytest.mark.parametrize("many", [True, False], ids=["batch", "alone"])
def test_a_removal_the_server_hung_up_on_is_sent_again_after_the_guard(
        emulator, penv, fast_retries, proxy, tmp_path, caplog, many):
    """Each request that removes goes after a call of the guard of its own: the guard saw
    0, 1, … removal requests sent before it, one value per request."""
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:runs/exp", jobs=1)
    names = ("a.txt", "b.txt", "c.txt") if many else ("a.txt",)
    for name in names:
        emulator.add_file(f"runs/exp/{name}", name.encode())
    start = _removals(proxy) + (1 if many else 0)   # (the checks' batch: a read)
    seen: list[int] = []

    def guard() -> None:
        seen.append(_removals(proxy) - start)
        if len(seen) == 2:   # (the pass's start, then the first removal request's)
            proxy.on("POST" if many else "DELETE", r"^/batch" if many else r"^/drive/v2/files/",
                     _hang_up, times=1)
    caplog.set_level(logging.INFO, logger="drivestage")
    res = push(str(src), "drive:runs/exp", delete_permanently=True, jobs=1, guard=guard)
    assert sorted(res.deleted) == sorted(names)
    assert titles_in(emulator, "runs/exp", trashed=False) == ["keep.txt"]
    sent = _removals(proxy) - start
    assert sent == 2   # (the one hung up on, and the one sent again)
    assert seen[1:] == list(range(sent)), seen   # (each after a guard call of its own)


@pytest.mark.parametrize("status", [None, 400, 404])
def test_a_file_taken_out_of_a_folder_the_server_hung_up_on_ends_taken_out(
        emulator, penv, fast_retries, proxy, tmp_path, status):
    """An old copy also in another folder is taken out of the run folder (files.update
    removeParents); the server did it and hung up. The try sent again asks to remove a parent
    the item no longer has: whatever Drive answers it, the push reads the item and says it
    taken out, exit 0 (a 400 failed the push: the resend counted as a first try)."""
    old, archive, src = _world(emulator, tmp_path)
    emulator.absent_parent_status = status
    for method in ("PUT", "PATCH"):
        proxy.on(method, r"removeParents=", _hang_up, times=1)
    code, _, err = run("push", str(src), "drive:runs")
    assert code == 0, err
    assert emulator.store.get(old)["parents"] == [archive], err
    assert [x for x in err.splitlines() if "best.pt" in x and "drive.store" in x] == [
        TAKEN.format(archive=archive)], err
