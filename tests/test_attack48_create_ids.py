"""attack48: a create whose answer was lost, sent again after this machine's clock stepped back
(a VM booted with its clock an hour ahead, then set right by NTP; a VM resumed).

The id recorded before the create (``create-ids.json``, :mod:`drivestage.create_ids`) is what
makes the rerun's create answer 409 instead of making a second file while Drive's listing does
not show the first yet. A record dated after "now" (written before the step) was taken for no
record (``0 <= now - t``): the rerun chose a new id and Drive held two files of the name. The
first push runs in a child whose clock is an hour ahead (``tests/_clock_shim``), the rerun in
this process on the true clock; the emulator's ``lag_listing`` hides the file from the rerun's
listing (by count, never by time) and a dropped answer stands for the cut."""
from __future__ import annotations

import hashlib
import subprocess
import sys

from _drive_state import live_md5s
from tests._cli import child_env
from tests._clock import skewed_env
from tests.test_create_ids25 import DEST, _create_answer_to_lose, _named, _push, _write

AHEAD = 3600.0


def test_a_create_recorded_before_the_clock_stepped_back_is_sent_again_with_its_id(
        emulator, env, tmp_path):
    src = tmp_path / "src"
    want = _create_answer_to_lose(emulator, src)
    cut = subprocess.run([sys.executable, "-m", "drivestage", "push", str(src), f"drive:{DEST}"],
                         env=dict(skewed_env(AHEAD, child_env(emulator)),
                                  DRIVESTAGE_RETRY_ATTEMPTS="1"),
                         capture_output=True, text=True, timeout=120)
    assert cut.returncode != 0, cut.stderr      # (its answer lost, no retry)
    assert [f["md5Checksum"] for f in _named(emulator, "b.bin")] == [want], cut.stderr
    result = _push(emulator, src)               # (the clock an hour back from the child's)
    assert live_md5s(emulator, DEST) == {"keep.txt": [hashlib.md5(b"already there").hexdigest()],
                                         "b.bin": [want]}
    assert result.uploaded == ["b.bin"]


def test_a_folder_made_before_the_clock_stepped_back_is_not_made_again(emulator, env, tmp_path):
    """The same for a folder the push made (``made_folders.json``, :class:`drivestage.state.
    MadeFolders`): the rerun, its listing not showing the folder yet, made a second ``sub``
    (main) where it now sends into the one made."""
    src = tmp_path / "src"
    x = _write(src / "sub" / "x.txt", b"x")
    emulator.faults.lag_listing(created=20, titles=r"^sub$")
    first = subprocess.run([sys.executable, "-m", "drivestage", "push", str(src),
                            f"drive:{DEST}"], env=skewed_env(AHEAD, child_env(emulator)),
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    y = _write(src / "sub" / "y.txt", b"y")
    _push(emulator, src)                        # (the clock an hour back from the child's)
    assert len(_named(emulator, "sub")) == 1
    emulator.faults.lag_listing()
    assert live_md5s(emulator, f"{DEST}/sub") == {"x.txt": [x], "y.txt": [y]}
