"""An archive member whose path in DEST is longer than the kernel takes (attackpull33).

A member may lie 256 folders deep with names of 255 bytes each, 64 KiB of path; Linux takes
4,095 bytes. A member whose path in DEST was longer was merged in (the temporary folder is
reached by descriptor, its path relative), then the check of what was merged, by its path,
failed with ENAMETOOLONG, read as `… changed while set.zip was extracted (another program
or pull wrote there); run the pull again`, exit 1; and every rerun then failed with `File
name too long (<4 KB of path>)`. Such a member is now refused before anything is written,
in a line that names it and says what to do; one just within the bound extracts, and its
rerun is `already staged`. The same for a Drive file of a folder pull (its partial download
needs room too) and for a symlink member's target.
"""
from __future__ import annotations

import gzip
import io
import os
import posixpath
import tarfile

import _cli
from _archives import a_fixed_zip, tree
from _messages import error_line


def _member_of(length: int) -> str:
    """A member path of ``length`` bytes: folders of 200 bytes, then a file name."""
    parts: list[str] = []
    while length - 201 * (len(parts) + 1) > 20:
        parts.append("y" * 200)
    return "/".join(parts + ["f" * (length - 201 * len(parts))])


def _pull(emulator, dest, length: int) -> tuple[bytes, str, tuple[int, str, str]]:
    """``pull drive:d/set.zip DEST -x`` of a zip whose long member is ``length`` bytes in
    DEST (its absolute path)."""
    member = _member_of(length - len(os.fsencode(str(dest))) - 1)
    data = a_fixed_zip({"ok.txt": b"ok", member: b"deep"})
    emulator.add_file("d/set.zip", data)
    return data, member, _cli.run("pull", "drive:d/set.zip", str(dest), "-x", "-q")


def test_a_member_whose_path_in_dest_is_too_long_is_refused_before_anything_is_written(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    dest = tmp_path / "d"
    data, member, (code, out, err) = _pull(emulator, dest, 4096)

    assert code == 1, err
    assert error_line(err) == (
        f"Error: member {member[:80]!r}... of set.zip would be a 4,096-byte path in {dest}, "
        "longer than the 4,095 bytes Linux takes: shorten its folder names in the archive")
    assert tree(dest) == {"set.zip": data}   # downloaded and verified; nothing extracted
    code, out, err = _cli.run("pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert code == 1 and error_line(err).startswith(f"Error: member {member[:80]!r}...")


def test_a_member_whose_path_in_dest_just_fits_extracts_and_its_rerun_is_staged(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    dest = tmp_path / "d"
    data, member, (code, out, err) = _pull(emulator, dest, 4095)

    assert code == 0, err
    assert len(os.fsencode(str(dest / member))) == 4095
    fd = os.open(dest, os.O_RDONLY)   # (the path itself is too long for a look by name here)
    try:
        for folder in member.split("/")[:-1]:
            fd, old = os.open(folder, os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        with os.fdopen(os.open(member.rsplit("/", 1)[1], os.O_RDONLY, dir_fd=fd), "rb") as fh:
            assert fh.read() == b"deep"
    finally:
        os.close(fd)
    code, out, err = _cli.run("pull", "drive:d/set.zip", str(dest), "-x")
    assert code == 0 and "already staged (" in err and "2 members already staged" in err, err


def test_a_drive_file_whose_local_path_leaves_no_room_for_its_download_is_refused_first(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """A folder pull: Drive's folders nest 100 deep with names of 255 bytes. A file whose
    local path fits, but not its partial download's record, failed the pull with a 4 KB
    `File name too long (…/.f….ranges)` after the files before it were staged; it is now
    refused before anything is, and the `--exclude` the line gives pulls the rest."""
    dest = tmp_path / "d"
    folders = "/".join(["y" * 200] * 19)
    size = 4070   # the file's local path: under 4,095, not with its partial's 64 more
    leaf = "f" * (size - len(os.fsencode(str(dest / "F" / folders))) - 1)
    emulator.add_file("F/ok.txt", b"ok")
    emulator.add_file(f"F/{folders}/{leaf}", b"deep")

    code, out, err = _cli.run("pull", "drive:F", str(dest))

    assert code == 2, err
    assert error_line(err) == (
        f"Error: {f'drive:F/{folders}'[:100]}.../{leaf[:100]}: its local path would be "
        "4,070 bytes, and a download needs 64 more for its partial file, over the 4,095 "
        "bytes Linux takes; shorten its folders' names on Drive, or pull without it: "
        "--exclude "
        f"'{'y' * 200}/*/{leaf}'")
    assert not dest.exists()
    _cli.ok("pull", "drive:F", str(dest), "--exclude", f"{'y' * 200}/*/{leaf}", "-q")
    assert tree(dest) == {"F/ok.txt": b"ok"}


def _tgz_with_links(targets: list[str], names: tuple[str, ...] = ()) -> bytes:
    """A tgz of ``a.txt`` and a symlink member to each of ``targets`` (``l``, or ``l0``,
    ``l1``, …)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"a"))
        for i, target in enumerate(targets):
            link = tarfile.TarInfo(names[i] if names else f"l{i}")
            link.type, link.linkname = tarfile.SYMTYPE, target
            tf.addfile(link)
    return gzip.compress(buf.getvalue(), mtime=0)


def _tgz_with_link(target: str) -> bytes:
    return _tgz_with_links([target], ("l",))


def test_a_symlink_member_whose_target_is_longer_than_a_path_is_refused_in_one_line(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """A tar's link target may be 1 MiB (a pax header); os.symlink takes 4,095 bytes, and its
    ENAMETOOLONG named the whole target: `cannot stage … File name too long (x/x/x/…)`, a
    line of 4 KB and more. The one-byte-shorter target is a link as before."""
    dest = tmp_path / "d"
    long, fits = "x/" * 2048, "xxxxxxx/" * 511 + "a" * 7   # (4,096 and 4,095 bytes)
    data = _tgz_with_link(long)
    emulator.add_file("d/set.tgz", data)

    code, out, err = _cli.run("pull", "drive:d/set.tgz", str(dest), "-x", "-q")

    assert code == 1, err
    assert error_line(err) == (
        f"Error: symlink member 'l' points to {long[:80]!r}..., a 4,096-byte target, longer "
        "than the 4,095 bytes Linux takes; the archive is corrupt: make it again and upload it")
    assert tree(dest) == {"set.tgz": data}
    emulator.add_file("d/fits.tgz", _tgz_with_link(fits))
    _cli.ok("pull", "drive:d/fits.tgz", str(tmp_path / "e"), "-x", "-q")
    assert os.readlink(tmp_path / "e" / "l") == fits


def test_a_symlink_member_whose_target_holds_more_names_than_any_path_is_refused(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """A link is judged a name of its target at a time: more names than a member can climb
    and then descend (256 up, 256 down) no archive needs; 2,047 of them took 3.5 s of CPU
    a link."""
    target = "x/" * 600
    data = _tgz_with_link(target)
    emulator.add_file("d/set.tgz", data)
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", "drive:d/set.tgz", str(dest), "-x", "-q")

    assert code == 1, err
    assert error_line(err) == (
        f"Error: symlink member 'l' points to {target[:80]!r}..., a target of 600 names, more "
        "than the 513 drivestage follows (up 256 folders, then down 256); the archive is "
        "corrupt: make it again and upload it")
    assert tree(dest) == {"set.tgz": data}


def test_links_with_deep_targets_are_judged_in_time_linear_in_their_depth(tmp_path,
                                                                          monkeypatch):
    """Each name of a target was looked up by walking up from it to the archive's folders:
    20 links of 512 names took 2.6 million steps (8 s here); each folder's answer is now
    kept. Counted: the ``dirname`` calls of the links module."""
    from drivestage.extract import extract, links

    calls = [0]

    class Counting:
        @staticmethod
        def dirname(path: str) -> str:
            calls[0] += 1
            return posixpath.dirname(path)

    monkeypatch.setattr(links, "posixpath", Counting)
    archive = tmp_path / "deep.tgz"
    archive.write_bytes(_tgz_with_links([f"{chr(97 + i)}/" * 511 + "z" for i in range(20)]))

    result = extract(str(archive), str(tmp_path / "out"))

    assert len(result.members) == 21
    assert calls[0] < 20 * 512 * 8, calls[0]   # (linear: 4 a name; before, 2.6 million)
