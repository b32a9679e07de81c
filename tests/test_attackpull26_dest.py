"""attackpull26: a staged DEST edited between runs. A rerun that says "already staged"
must not hide a member that is not what the archive holds: absent, another kind or size
(held before), or a link that leads elsewhere (a link's size is its target's length: one
retargeted to a name of the same length was "in place", and stayed so for good); and
what lies at a partial download's names is read without waiting on it."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile

import pytest

from test_messages_walk20 import _drivestage


def _tar(tmp_path) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("ds/v1/a", b"one"), ("ds/v2/a", b"two")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_600_000_000
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("ds/cur")
        link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "v1", 1_600_000_000
        tf.addfile(link)
    (tmp_path / "input").mkdir()
    archive = tmp_path / "input" / "set.tar"
    archive.write_bytes(buf.getvalue())
    return str(archive)


def test_a_member_link_retargeted_to_a_name_of_the_same_length_is_put_back(local_state,
                                                                           tmp_path):
    archive, dest = _tar(tmp_path), tmp_path / "data"
    assert _drivestage("pull", archive, str(dest), "-x", "-q").exit_code == 0
    assert (dest / "ds" / "cur" / "a").read_bytes() == b"one"
    os.unlink(dest / "ds" / "cur")
    os.symlink("v2", dest / "ds" / "cur")                   # the same length as "v1"
    r = _drivestage("pull", archive, str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    assert os.readlink(dest / "ds" / "cur") == "v1"
    assert (dest / "ds" / "cur" / "a").read_bytes() == b"one"


def _child_pull(src: str, dest: str) -> "subprocess.CompletedProcess[str]":
    # A child process: a hang is its own, ended by the timeout (a thread would stay).
    return subprocess.run([sys.executable, "-c", "import sys; from drivestage.entry import "
                           "main; sys.argv[0] = 'drivestage'; main()", "pull", src, dest, "-q"],
                          capture_output=True, text=True, timeout=30, env=dict(os.environ))


@pytest.mark.parametrize("what", ["fifo", "link to a fifo"])
def test_a_fifo_at_a_partial_s_range_record_does_not_hang_the_pull(what, local_state,
                                                                  tmp_path):
    """A FIFO put where a partial download's range record goes (by another program writing
    DEST): the pull opened it to read the record and waited for a writer for good."""
    from drivestage.partials import partial_path, ranges_path
    from drivestage.remote import open_store

    (tmp_path / "src").mkdir()
    data = os.urandom(300_000)
    (tmp_path / "src" / "blob.bin").write_bytes(data)
    dest = tmp_path / "dest"
    dest.mkdir()
    store, path = open_store(str(tmp_path / "src" / "blob.bin"))
    partial = partial_path(str(dest / "blob.bin"), store.resolve(path))
    with open(partial, "wb") as fh:
        fh.write(data[:1000])
    if what == "fifo":
        os.mkfifo(ranges_path(partial))
    else:
        os.mkfifo(tmp_path / "pipe")
        os.symlink(tmp_path / "pipe", ranges_path(partial))
    r = _child_pull(str(tmp_path / "src" / "blob.bin"), str(dest))
    assert r.returncode == 0, r.stderr
    assert (dest / "blob.bin").read_bytes() == data


@pytest.mark.parametrize("what", ["fifo", "link to /dev/zero"])
def test_an_empty_file_whose_name_in_dest_holds_a_fifo_or_a_device_is_staged(what, local_state,
                                                                            tmp_path):
    """An empty file to stage (a YOLO label file of an image without objects, an
    ``__init__.py``) whose name in DEST holds a FIFO, or a link to a device, put there by
    another program: its size (0) was the file's, so the pull read it for its md5 to adopt
    it, and waited for a writer (or read /dev/zero) for good."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "empty.txt").write_bytes(b"")
    (tmp_path / "src" / "b.txt").write_bytes(b"b")
    there = tmp_path / "dest" / "src" / "empty.txt"
    there.parent.mkdir(parents=True)
    if what == "fifo":
        os.mkfifo(there)
    else:
        os.symlink("/dev/zero", there)
    r = _child_pull(str(tmp_path / "src"), str(tmp_path / "dest"))
    assert r.returncode == 0, r.stderr
    assert not there.is_symlink() and there.is_file() and there.read_bytes() == b""


def test_a_member_missing_under_a_folder_moved_away_behind_a_link_is_restored_in_one_run(
        local_state, tmp_path):
    """The extracted ``ds/`` moved to a bigger disk with a link left in its place (a
    rerun then says "already staged"), and one file of it lost. The rerun judged the
    members reached through the link in place and wrote only the lost one, but the merge
    never writes through a link of DEST: it put a folder in the link's place holding that
    one file, then failed on the others ("ds/f0 changed while ... was extracted (another
    program or pull wrote there)"), and only the run after restored the rest. Members are
    judged in place only through real folders now, as the merge writes them: one run."""
    import zipfile

    (tmp_path / "in").mkdir()
    members = {f"ds/f{i}": os.urandom(1000) for i in range(5)}
    with zipfile.ZipFile(tmp_path / "in" / "a.zip", "w") as zf:
        for name, data in {**members, "top.txt": b"x"}.items():
            zf.writestr(name, data)
    archive, dest, big = str(tmp_path / "in" / "a.zip"), tmp_path / "dest", tmp_path / "big"
    assert _drivestage("pull", archive, str(dest), "-x", "-q").exit_code == 0
    big.mkdir()
    os.rename(dest / "ds", big / "ds")
    os.symlink(big / "ds", dest / "ds")
    r = _drivestage("pull", archive, str(dest), "-x", "-q", "--json")
    assert r.exit_code == 0 and '"action": "cached"' in r.output, r.output  # (its setup held)
    os.unlink(big / "ds" / "f1")
    r = _drivestage("pull", archive, str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    for name, data in members.items():
        assert (dest / name).read_bytes() == data
    assert sorted(os.listdir(big / "ds")) == ["f0", "f2", "f3", "f4"]  # never written


def test_a_rerun_that_extracts_puts_back_every_member_another_archive_replaced(local_state,
                                                                               tmp_path):
    """a.zip pulled, then b.zip into the same DEST (it replaces two of a's members, one of
    them with bytes of the same size), then a.zip again: the rerun extracts (a member is
    not in place) and puts its own members back, but it kept those "in place" by kind and
    size: ``sub/c.txt`` stayed b's, under a summary saying a.zip was extracted. (Found by
    test_pull_stamps.py's property test, falsifying example; held by main too.)"""
    from _archives import a_zip, tree

    a = {"VOCdevkit/a.txt": b"\x00", "VOCdevkit/b.txt": b"", "VOCdevkit/sub/c.txt": b"\x01"}
    b = {"VOCdevkit/sub/c.txt": b"\x00", "VOCdevkit/a.txt": b""}
    (tmp_path / "in").mkdir()
    for key, members in (("a", a), ("b", b)):
        (tmp_path / "in" / f"{key}.zip").write_bytes(a_zip(members))
    dest = tmp_path / "dest"
    for key in "aba":
        r = _drivestage("pull", str(tmp_path / "in" / f"{key}.zip"), str(dest), "-x", "-q")
        assert r.exit_code == 0, r.output
    assert tree(dest) == a


def test_a_local_source_written_while_it_is_copied_is_not_said_to_change_on_drive(
        local_state, tmp_path, monkeypatch):
    """``pull /kaggle/input/x/big.bin DEST`` while another program writes the file: the
    line said ``... changed on Drive while downloading``; the file is in a folder here."""
    import drivestage.localdir as localdir
    from drivestage.errors import RemoteChangedError
    from drivestage.stage import pull

    (tmp_path / "in").mkdir()
    src = tmp_path / "in" / "big.bin"
    src.write_bytes(os.urandom(1 << 20))
    real, done = localdir.LocalDirStore.read_into, []

    def read_into(self, *args, **kwargs):
        if not done:  # another program writes it as the copy begins
            done.append(True)
            with open(src, "r+b") as fh:
                fh.write(os.urandom(4096))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(localdir.LocalDirStore, "read_into", read_into)
    with pytest.raises(RemoteChangedError) as got:
        pull(str(src), str(tmp_path / "dest"), quiet=True)
    assert str(got.value).startswith(f"{src} changed in its folder while it was copied (md5 ")
    assert not (tmp_path / "dest" / "big.bin").exists()
