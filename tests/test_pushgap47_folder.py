"""pushgap47 (1): a Drive folder made at a file's name *while* push (or mirror) sends it. The
check for such a folder (attackpush45) read the listing made before a byte was sent; a
folder made in between (another machine, the user in the web page) let the file go beside it:
two items of one name, exit 0, and every pull of DEST then refused the name. Now each folder
a new name went into is listed once more after the uploads (the checkpoints before their
sidecars go, that listing checking the sidecars' names too): the copy this push made there
is removed, and the name is said in the usual line, the rest sent (exit 1, since
pushshared48), as trainatk47 did for the trainer's sends alone.

The real CLI (and Mirror) and stack against the emulator behind tests/_proxy.py, which makes
the folder as the push's first upload session starts (the file is made after it)."""
from __future__ import annotations

import pytest

from _checkpoints import md5, save
from _cli import run
from _drive_state import live_md5s
from _proxy import when_sending


def test_a_folder_made_at_a_new_files_name_during_the_push(emulator, through, proxy, tmp_path):
    """Before: exit 0 and ``x`` twice on Drive (the folder and the file). Now the line of a
    folder found before the send, and exit 1 (since pushshared48: the rest is sent); the
    folder alone holds the name, the other file went; the next push (``--delete``) replaces
    the folder, as the line says."""
    src = tmp_path / "run"
    src.mkdir()
    (src / "x").write_bytes(b"now a file")
    (src / "y.txt").write_bytes(b"y")
    made = when_sending(proxy, lambda: emulator.add_folder("runs/a/x"))
    code, _, err = run("push", str(src), "drive:runs/a", "--jobs", "1")
    assert made, "the folder was never made during the push"
    assert code == 1, err   # (x alone not sent, the rest pushed: pushshared48)
    assert err.strip().splitlines()[-1] == (
        "Error: 1 file of SRC not sent: a folder on Drive has its name (the line above names "
        "it); everything else was pushed, and nothing at that name on Drive was removed; push "
        "again once the folder is renamed"), err
    assert [ln for ln in err.splitlines() if "is a folder, not a file" in ln][0].endswith(
        f"drive:runs/a/x exists and is a folder, not a file; {src}/x cannot be sent "
        "there: rename one of them, or push with --delete to replace the folder"), err
    assert live_md5s(emulator, "runs/a") == {"x": [None], "y.txt": [md5(b"y")]}
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {"x": [md5(b"now a file")], "y.txt": [md5(b"y")]}


@pytest.mark.parametrize("name", ["epoch_002.pt", "epoch_002.json"])
def test_a_folder_made_at_a_new_checkpoints_name_or_its_sidecars_keeps_the_old_pair(
        emulator, through, proxy, tmp_path, name):
    """A new pair (``epoch_002.pt``, then its sidecar once the checkpoint is verified) beside
    the verified ``epoch_001`` pair. A folder of the checkpoint's name, or of its sidecar's,
    made as the checkpoint is sent: before, exit 0 with a file beside the folder. Now neither
    file of the new pair stays (the sidecar is not sent; the checkpoint's copy goes again):
    Drive holds the old pair and the folder, as before the push."""
    src = tmp_path / "run"
    old = save(str(src), "epoch_001", 1, 1_000_000)
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    save(str(src), "epoch_002", 2, 1_000_100)
    made = when_sending(proxy, lambda: emulator.add_folder(f"runs/a/{name}"))
    code, _, err = run("push", str(src), "drive:runs/a")
    assert made, "the folder was never made during the push"
    assert code == 1, err   # (that name alone not sent: pushshared48)
    assert err.strip().splitlines()[-1] == (
        "Error: 1 file of SRC not sent: a folder on Drive has its name (the line above names "
        "it); everything else was pushed, and nothing at that name on Drive was removed; push "
        "again once the folder is renamed"), err
    assert [ln for ln in err.splitlines() if "is a folder, not a file" in ln][0].endswith(
        f"drive:runs/a/{name} exists and is a folder, not a file; {src}/{name} cannot "
        "be sent there: rename one of them, or push with --delete to replace the folder"), err
    assert live_md5s(emulator, "runs/a") == {**old, name: [None]}, err


def test_a_mirror_period_that_met_such_a_folder_sends_nothing_beside_it(
        emulator, through, proxy, tmp_path):
    """The same through :class:`drivestage.mirror.Mirror` (its pushes are push's): the
    flush fails with the line (before: it passed), and the file is not left beside the folder."""
    from drivestage.errors import MirrorError
    from drivestage.mirror import Mirror

    src = tmp_path / "run"
    src.mkdir()
    (src / "x").write_bytes(b"now a file")
    made = when_sending(proxy, lambda: emulator.add_folder("runs/a/x"))
    mirror = Mirror(str(src), "drive:runs/a")
    try:
        with pytest.raises(MirrorError) as failed:
            mirror.flush(60)
    finally:
        mirror.stop(60, flush=False)
    assert made
    assert str(failed.value) == (
        f"mirror of {src} to drive:runs/a failed: 1 file of SRC not sent: a folder on Drive "
        f"has its name (the line above names it); everything else was pushed, and nothing at "
        f"that name on Drive was removed; push again once the folder is renamed")
    assert live_md5s(emulator, "runs/a") == {"x": [None]}
