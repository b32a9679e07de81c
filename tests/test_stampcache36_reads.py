"""A folder pull reads each stamp once per version of it (drivestage.stamp_cache), not once
per archive asking: a rerun of a folder whose archives all share a path (``ds/x``) read
every stamp once per archive, n² reads (500 archives: 450,500 reads, 10-28 s for a rerun
that writes nothing; stampcache36). Counted from the stamp files the pull opens (an audit
hook on ``open``), and the Drive requests from the emulator's log; a stamp another process
rewrites while the pull runs is read again and trusted as it is now."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import _cli
from _cli import child_env
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from test_chunkdet35_order import _zip

N = 80
_opened: list[str] = []
_on_open: list = []            # [(name, callback)]: called once, at the pull's open of name
_counting = threading.Event()


def _hook(event: str, args: tuple) -> None:
    if event != "open" or not _counting.is_set() or not isinstance(args[0], str):
        return
    name = args[0]
    if "@" in name and name.endswith(".json") and "/" not in name:   # a stamp, by dir_fd
        _opened.append(name)
    for i, (wanted, then) in enumerate(list(_on_open)):
        if name == wanted:
            del _on_open[i]
            then()


sys.addaudithook(_hook)


def _counted(*args: str) -> tuple[int, str, list[str]]:
    del _opened[:]
    _counting.set()
    try:
        code, _, err = _cli.run(*args)
    finally:
        _counting.clear()
    return code, err, list(_opened)


def _folder(emulator, n: int) -> None:
    for i in range(n):
        emulator.add_file(f"F/s{i:03d}.zip", _zip({"ds/x": b"v%d" % i, f"ds/own{i}": b"o"}))


def test_a_staged_rerun_reads_each_stamp_once(emulator, local_state, monkeypatch, tmp_path):
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    _folder(emulator, N)
    dest = tmp_path / "d"
    code, err, first = _counted("pull", "drive:F", str(dest), "-x", "-q")
    assert code == 0, err
    # Each stamp read once per version: written when downloaded, then when extracted, each
    # read back once (about 3N here; one replaced between a listing and its read is read
    # once more), not once per archive asking (main: 6,549 here, 251,642 for 500).
    assert len(first) <= 5 * N, len(first)
    assert (dest / "F/ds/x").read_bytes() == b"v%d" % (N - 1)    # the last by name holds
    emulator.clear_requests()
    code, err, rerun = _counted("pull", "drive:F", str(dest), "-x")
    assert code == 0 and f"{N} files ({N} already staged)" in err, err
    assert sorted(rerun) == sorted(set(rerun)) and len(rerun) == N   # each once (main: 12,080)
    assert [r for r in emulator.requests if r.query.get("alt") == "media"] == []
    assert len(emulator.requests) <= 2      # the folder found, its files listed
    assert (dest / "F/ds/x").read_bytes() == b"v%d" % (N - 1)
    assert [(dest / f"F/ds/own{i}").read_bytes() for i in range(N)] == [b"o"] * N


def test_a_stamp_another_process_rewrites_mid_pull_is_read_again(emulator, local_state,
                                                                 monkeypatch, tmp_path):
    """Another pull extracts the last archive again while this rerun runs, after this one
    read its stamp: the member is newer than the stamp this pull read, and the new stamp
    records it. Trusted as read, the member "changed since its extraction" and the
    archive was extracted again; read again (its file has another inode), it is staged."""
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    _folder(emulator, 3)
    dest = tmp_path / "d"
    code, err, _ = _counted("pull", "drive:F", str(dest), "-x", "-q")
    assert code == 0, err
    env = child_env(emulator)
    ran = []

    def another_pull() -> None:
        # A real second process, once this pull has read every stamp (at its start), as
        # it takes the first file's lock (holding none): it extracts s002.zip again.
        done = cli_server().run(["pull", "drive:F",
                                 str(dest), "-x", "-q", "--force", "--include", "s002.zip"],
                                env=env, text=True, timeout=120)
        ran.append(done)

    _on_open.append(("s000.zip.lock", another_pull))
    code, err, opened = _counted("pull", "drive:F", str(dest), "-x", "-j", "1")
    del _on_open[:]
    assert ran and ran[0].returncode == 0, ran and ran[0].stderr
    assert code == 0 and "3 files (3 already staged)" in err, err
    # Read at the start, then again once the other process had renamed a new one over it.
    assert sorted(n.split("@")[0] for n in opened) == ["s000.zip", "s001.zip", "s002.zip",
                                                         "s002.zip"], opened
    assert (dest / "F/ds/x").read_bytes() == b"v2"


def test_past_the_open_file_budget_stamps_are_read_at_each_use(emulator, local_state,
                                                               monkeypatch, tmp_path):
    """A stamp the cache cannot hold open (beyond its share of the open-file limit) could
    be rewritten twice and show its old inode number again: it is read at every use, as
    without the cache, and the rerun judges the same."""
    from drivestage import stamp_cache

    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    _folder(emulator, 12)
    dest = tmp_path / "d"
    assert _counted("pull", "drive:F", str(dest), "-x", "-q")[0] == 0
    monkeypatch.setattr(stamp_cache, "_PINS", 3)
    emulator.clear_requests()
    code, err, rerun = _counted("pull", "drive:F", str(dest), "-x")
    assert code == 0 and "12 files (12 already staged)" in err, err
    assert len(rerun) > 2 * 12, len(rerun)           # the 9 unpinned, again and again
    assert [r for r in emulator.requests if r.query.get("alt") == "media"] == []
    assert (dest / "F/ds/x").read_bytes() == b"v11"
    assert stamp_cache._pinned == [0]                 # every one closed at the end
