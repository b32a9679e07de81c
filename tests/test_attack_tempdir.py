"""Attacks on an extraction's temporary folder by someone who can write DEST.

The folder ``DEST/.drivestage-extract-…`` is exposed by its name: whoever can write DEST (a
shared ``/content``, a team's data disk) can rename it and put a link to a folder of theirs
in its place, or put their own folder at its name before drivestage opens it. Nothing may
then be written through the link or into their folder: every path inside is reached from
the folder's descriptor (:mod:`drivestage.extract.tempdir`).
"""
from __future__ import annotations

import io
import os
import tarfile

import pytest

from _archives import a_tgz, a_zip, tree
from drivestage.errors import DestChangedError
from drivestage.extract import extract
from drivestage.extract import tempdir
from drivestage.extract.overlapped import Overlapped
from drivestage.extract.tempdir import OWNER_LOCK, TEMP_PREFIX, make_temp, remove_temp

DATA = {f"set/{d}/{i:03d}.jpg": os.urandom(3000) + bytes([i]) for d in range(3)
        for i in range(40)}
DATA["set/labels.txt"] = b"cat\ndog\n"


def temp_in(dest) -> str:
    names = [n for n in os.listdir(dest) if n.startswith(TEMP_PREFIX)]
    assert len(names) == 1, names
    return os.path.join(dest, names[0])


def outside_folder(tmp_path):
    """The attacker's folder, with every subfolder the archive has (so that a write through
    a link would succeed, not fail for a missing folder)."""
    outside = tmp_path / "outside"
    for d in range(3):
        (outside / "set" / str(d)).mkdir(parents=True)
    return outside


def swap_once(dest, outside, moved):
    """A progress callback that, at the first bytes written, renames the temporary folder
    to ``moved`` and puts a link to ``outside`` at its name."""
    done = []

    def hook(_: int) -> None:
        if not done:
            done.append(True)
            tmp = temp_in(dest)
            os.rename(tmp, moved)
            os.symlink(outside, tmp)
    return hook, done


def visible(dest) -> dict[str, bytes]:
    """What DEST holds outside hidden top-level names (drivestage's, and the attacker's)."""
    return {k: v for k, v in tree(dest).items() if not k.startswith(".")}


def files_below(folder) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, n), folder)
                  for d, _, names in os.walk(folder) for n in names)


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_a_temp_folder_swapped_for_a_link_while_threads_write_gets_nothing_through_it(
        tmp_path, kind):
    """Threads (a small zip) and the stream of a tar.gz: the swap at the first bytes
    written changes nothing for the extraction, which completes from the moved folder;
    the attacker's folder stays empty."""
    archive = tmp_path / f"a.{'zip' if kind == 'zip' else 'tar.gz'}"
    archive.write_bytes(a_zip(DATA) if kind == "zip" else a_tgz(DATA))
    dest, outside = tmp_path / "dest", outside_folder(tmp_path)
    dest.mkdir()
    hook, done = swap_once(dest, outside, dest / ".moved")
    result = extract(archive, dest, progress=hook, jobs=2)
    assert done == [True]
    assert files_below(outside) == []
    assert visible(dest) == DATA
    assert sorted(m.path for m in result.members if m.kind == "file") == sorted(DATA)
    assert files_below(dest / ".moved") == []  # emptied through its descriptor


def test_a_temp_folder_swapped_for_a_link_while_a_tar_downloads_gets_nothing_through_it(
        tmp_path):
    """A tar followed as it downloads (``pull --extract``): folders and files made as the
    members come, all from the folder's descriptor."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for d in range(3):
            info = tarfile.TarInfo(f"set/{d}")
            info.type = tarfile.DIRTYPE
            tf.addfile(info)
        for name, data in DATA.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    archive = tmp_path / "a.tar"
    archive.write_bytes(raw.getvalue())
    dest, outside = tmp_path / "dest", outside_folder(tmp_path)
    dest.mkdir()
    hook, done = swap_once(dest, outside, dest / ".moved")
    job = Overlapped.tar(str(archive), archive.stat().st_size, str(dest),
                         lambda start, end: True, progress=hook)
    job.finish()
    assert done == [True]
    assert files_below(outside) == []
    assert visible(dest) == DATA


def test_a_moved_temp_folder_is_emptied_and_what_sits_at_its_name_is_left_alone(tmp_path):
    """Removing a temporary folder someone moved: what it holds goes (through its
    descriptor); the link at its name, and the folder the link leads to, are not touched."""
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"theirs")
    temp, owner = make_temp(str(dest))
    try:
        os.mkdir("sub", dir_fd=temp.fd)
        fd = os.open("sub/x", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=temp.fd)
        os.close(fd)
        os.rename(temp.path, dest / ".moved")
        os.symlink(outside, temp.path)
        remove_temp(temp)
    finally:
        os.close(owner)
    assert files_below(outside) == ["keep.txt"]
    assert os.path.islink(temp.path)
    assert os.listdir(dest / ".moved") == []


def test_a_folder_of_someone_else_put_at_the_new_name_is_not_written_into(tmp_path,
                                                                          monkeypatch):
    """Between ``mkdir`` and ``open`` someone moves the new folder away and makes one of
    their own (writable by all) at its name: drivestage takes another name."""
    dest = tmp_path / "dest"
    dest.mkdir()
    theirs: list[str] = []
    real_mkdir = os.mkdir

    def mkdir_then_swapped(path, mode=0o777, *args, **kwargs):
        real_mkdir(path, mode, *args, **kwargs)
        if not theirs and os.path.basename(str(path)).startswith(TEMP_PREFIX):
            os.rename(path, str(path) + ".ours")
            real_mkdir(path)
            os.chmod(path, 0o777)
            theirs.append(str(path))

    monkeypatch.setattr(tempdir.os, "mkdir", mkdir_then_swapped)
    temp, owner = make_temp(str(dest))
    monkeypatch.undo()
    try:
        assert theirs and temp.path != theirs[0]
        assert os.listdir(theirs[0]) == []
        assert os.listdir(temp.fd) == [OWNER_LOCK]
    finally:
        remove_temp(temp)
        os.close(owner)


def test_new_temp_folders_that_keep_being_swapped_end_in_a_clear_error(tmp_path, monkeypatch):
    """An attacker (or a broken program) that swaps every new folder for a link: a bounded
    number of names, then an error that says what happened, and nothing made outside."""
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    real_mkdir = os.mkdir
    tries: list[str] = []

    def mkdir_then_linked(path, mode=0o777, *args, **kwargs):
        real_mkdir(path, mode, *args, **kwargs)
        if os.path.basename(str(path)).startswith(TEMP_PREFIX):
            os.rmdir(path)
            os.symlink(outside, path)
            tries.append(str(path))

    monkeypatch.setattr(tempdir.os, "mkdir", mkdir_then_linked)
    with pytest.raises(DestChangedError) as info:
        make_temp(str(dest))
    assert len(tries) == 8
    assert str(info.value) == (
        f"the temporary folders drivestage made in {dest} kept vanishing or changing before "
        "it could use one; is another program writing there? Extract again, or elsewhere")
    assert os.listdir(outside) == []


def test_the_temp_folder_is_private_while_members_are_written(tmp_path):
    """Only its name is exposed: nobody else can write inside (mode 0700)."""
    dest = tmp_path / "dest"
    dest.mkdir()
    temp, owner = make_temp(str(dest))
    try:
        assert os.stat(temp.path).st_mode & 0o777 == 0o700
    finally:
        remove_temp(temp)
        os.close(owner)
    assert os.listdir(dest) == []


def test_a_merge_the_file_system_refuses_names_the_path_in_dest(tmp_path):
    """The merge reaches DEST's folders by descriptor, so the OS names only the entry; the
    error says where in DEST it is (``pull`` shows it: ``cannot stage … (DEST/ds/a.txt)``)."""
    import shutil
    import subprocess

    dest = tmp_path / "dest"
    (dest / "ds").mkdir(parents=True)
    if os.geteuid() != 0 or shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(dest / "ds")], capture_output=True).returncode != 0:
        pytest.skip("needs root and chattr on a file system with the immutable flag")
    archive = tmp_path / "a.zip"
    archive.write_bytes(a_zip({"ds/a.txt": b"alpha", "ds/b.txt": b"beta"}))
    try:
        with pytest.raises(PermissionError) as info:
            extract(archive, dest)
    finally:
        subprocess.run(["chattr", "-i", str(dest / "ds")], check=True)
    assert info.value.filename == str(dest / "ds" / "a.txt")
    assert os.listdir(dest / "ds") == []
    assert sorted(os.listdir(dest)) == [".drivestage", "ds"]  # no temporary folder left
