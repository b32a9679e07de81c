"""pushlefts48: the messages of docs/troubleshooting.md this helper's changes say, made to
happen (named test_messages_* as test_docs collects @renders from those only).

(3) A local file made at a pull's target while its bytes came. A pull never
replaces a file of the user's unasked: one there before with other bytes is refused before a
byte is fetched (``… is already there and is not a copy of … that drivestage staged``). But
one written there *during* the download (another program, the user saving a file of that
name) was replaced by the final rename, exit 0: the user's file lost. Now the verified
download is placed without replacing anything where nothing was at the target when it
began: refused in one line, the user's file kept, the download kept beside it, so the pull
after the file is moved away fetches nothing again.

The real CLI and stack against the emulator behind tests/_proxy.py, which writes the local
file as the media request is answered (no sleeps)."""
from __future__ import annotations

from _checkpoints import save
from _cli import run
from _drive_state import live_md5s
from _envs import penv  # noqa: F401  (a fixture)
from _messages import renders, shown
from _proxy import Reply

MADE = "was made while … downloaded (by another program?) and is not replaced; …"
SHARED = ("holds a folder and a file both named … (the folder made there while the file was "
          "sent?)")


@renders(MADE)
def test_a_file_made_at_the_target_during_the_download_is_not_replaced(
        emulator, penv, proxy, tmp_path):
    emulator.add_file("data/a/x.txt", b"drive bytes")
    dest = tmp_path / "d"
    dest.mkdir()
    mine = dest / "a" / "x.txt"
    done: list = []

    def meanwhile(status, headers, body):
        if not done:   # (the user saves a file of that name as the bytes come)
            mine.parent.mkdir(exist_ok=True)
            mine.write_bytes(b"the user's")
            done.append(True)
        return Reply(status, headers, [body])
    proxy.on("GET", r"alt=media", meanwhile)
    code, _, err = run("pull", "drive:data/a", str(dest))
    assert done
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"Error: {mine} was made while drive:data/a/x.txt downloaded (by another program?) "
        f"and is not replaced; the download waits beside it, verified: move that file away "
        f"and pull again (nothing is fetched again), or pull again with --force to replace "
        f"it"), err
    shown(MADE, err.strip().splitlines()[-1])
    assert mine.read_bytes() == b"the user's"
    mine.rename(tmp_path / "kept.txt")
    fetched = proxy.count("GET", r"alt=media")
    code, _, err = run("pull", "drive:data/a", str(dest))
    assert code == 0, err
    assert mine.read_bytes() == b"drive bytes"
    assert proxy.count("GET", r"alt=media") == fetched   # (nothing fetched again)
    assert sorted(p.name for p in mine.parent.iterdir()) == [".drivestage", "x.txt"]


@renders(SHARED)
def test_a_folder_and_a_file_sharing_a_name_on_drive(emulator, penv, tmp_path):
    """The state a folder made after the last listing of a push leaves (made here directly;
    the race itself: tests/test_pushlefts48_folder_after.py): the next push says it."""
    src = tmp_path / "run"
    pair = save(str(src), "epoch_001", 1, 1_000_000)
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    emulator.add_folder("runs/a/epoch_001.pt")
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 1, err   # (that name alone not sent: pushshared48)
    shown(SHARED, [ln for ln in err.splitlines() if "holds a folder and a file" in ln][0])
    assert live_md5s(emulator, "runs/a") == {**pair, "epoch_001.pt": sorted(
        [None, *pair["epoch_001.pt"]], key=str)}
