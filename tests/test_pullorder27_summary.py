"""The summary line counts the members a pull extracted apart from those already staged. A
rerun that found every archive staged said `N members extracted` (pullorder27): nothing had
been extracted; and a pull of one archive said `1 members extracted`."""
from __future__ import annotations

import os
import re

from _cli import summed
from test_messages_walk20 import _drivestage
from test_two_archives26 import _zip

from drivestage.sizes import format_size


def _tail(output: str) -> str:
    """The summary line, without its seconds."""
    line = [ln for ln in output.splitlines() if " -> " in ln][-1]
    return re.sub(r", [0-9.]+s\)?$", "", line)


def test_the_summary_says_what_was_extracted_and_what_was_already_staged(
        emulator, drive_env, local_state, tmp_path):
    emulator.add_file("src/a.zip", _zip({"one/a": b"a", "one/b": b"b"}))
    dest = tmp_path / "d"
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    where = f"drive:src -> {dest / 'src'}"
    size = format_size(len(_zip({"one/a": b"a", "one/b": b"b"})))
    assert _tail(r.output) == f"{where}: 1 file (1 downloaded), {size}, 2 members extracted"
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    assert _tail(r.output) == \
        f"{where}: 1 file (1 already staged), {size}, 2 members already staged"
    emulator.add_file("src/b.zip", _zip({"two/c": b"c"}))
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    size = format_size(len(_zip({"one/a": b"a", "one/b": b"b"})) + len(_zip({"two/c": b"c"})))
    assert _tail(r.output) == (f"{where}: 2 files (1 already staged, 1 downloaded), {size}, "
                               "1 member extracted, 2 already staged")


def test_a_pull_of_one_staged_archive_does_not_say_its_members_were_extracted(
        emulator, drive_env, local_state, tmp_path):
    data = _zip({"one/a": b"a"})
    emulator.add_file("src/a.zip", data)
    dest = tmp_path / "d"
    r = _drivestage("pull", "drive:src/a.zip", str(dest), "-x")
    assert r.exit_code == 0, r.output
    checked = summed(data)   # the checksum that verified it, kept in its stamp
    where = f"drive:src/a.zip -> {dest / 'a.zip'}"
    assert _tail(r.output) == (f"{where}: downloaded and verified ({format_size(len(data))}, "
                               f"{checked}, 1 member extracted")
    r = _drivestage("pull", "drive:src/a.zip", str(dest), "-x")
    assert r.exit_code == 0, r.output
    assert _tail(r.output) == (f"{where}: already staged ({format_size(len(data))}, "
                               f"{checked}, 1 member already staged")


def test_a_rerun_that_puts_back_one_member_says_one_was_extracted(
        emulator, drive_env, local_state, tmp_path):
    """A member deleted by hand: the rerun writes it alone (the rest is in place) and said
    the archive's every member was extracted."""
    data = _zip({"one/a": b"a", "one/b": b"b", "one/c": b"c"})
    emulator.add_file("src/a.zip", data)
    dest = tmp_path / "d"
    assert _drivestage("pull", "drive:src/a.zip", str(dest), "-x").exit_code == 0
    os.unlink(dest / "one" / "b")
    r = _drivestage("pull", "drive:src/a.zip", str(dest), "-x")
    assert r.exit_code == 0, r.output
    assert _tail(r.output) == (
        f"drive:src/a.zip -> {dest / 'a.zip'}: extracted ({format_size(len(data))}, "
        f"{summed(data)}, 1 member extracted, 2 already staged")
    assert (dest / "one" / "b").read_bytes() == b"b"
    r = _drivestage("pull", "drive:src", str(tmp_path / "e"), "-x")   # (another DEST)
    assert r.exit_code == 0, r.output
    os.unlink(tmp_path / "e" / "src" / "one" / "a")
    r = _drivestage("pull", "drive:src", str(tmp_path / "e"), "-x")
    assert r.exit_code == 0, r.output
    assert _tail(r.output).endswith(
        f": 1 file (1 extracted), {format_size(len(data))}, 1 member extracted, "
        "2 already staged"), r.output
