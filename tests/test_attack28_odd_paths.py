"""Local paths whose bytes are not UTF-8 (attack28): a SRC under a folder named in Latin-1
(``/data/d\\xe9p\\xf4t``, a disk from an old machine). Pulls into such a DEST worked, but a
push from it ended in ``UnicodeEncodeError: 'utf-8' codec can't encode character '\\udce9'``
for every file (``5 uploads failed``): the name of a file's claim lock (``state._byte``)
and of a place's lock were hashed from ``str.encode()``, which refuses what Python read of
those bytes. They are hashed from the path's own bytes now (the same bytes for a UTF-8
path). Real CLI in this process, the emulator."""
from __future__ import annotations

import hashlib
import os

from click.testing import CliRunner

from drivestage.cli import cli


def _odd(tmp_path, name: bytes) -> str:
    path = os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), name))
    os.makedirs(path)
    return path


def test_a_push_from_a_folder_whose_path_is_not_utf8(emulator, drive_env, local_state,
                                                      tmp_path):
    src = _odd(tmp_path, b"d\xe9p\xf4t")
    for name, data in (("a.bin", b"alpha"), ("b.bin", b"beta")):
        with open(os.path.join(src, name), "wb") as fh:
            fh.write(data)
    result = CliRunner().invoke(cli, ["push", src, "drive:G"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    for name, data in (("a.bin", b"alpha"), ("b.bin", b"beta")):
        assert emulator.find(f"G/{name}")["md5Checksum"] == hashlib.md5(data).hexdigest()
    again = CliRunner().invoke(cli, ["push", src, "drive:G"])
    assert again.exit_code == 0, (again.stderr, again.exception)
    assert "0 uploaded (0 B), 2 unchanged" in again.output, again.output


def test_a_push_into_a_local_folder_whose_path_is_not_utf8(local_state, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"alpha")
    dest = _odd(tmp_path, b"c\xf4pie")
    result = CliRunner().invoke(cli, ["push", str(src), dest])
    assert result.exit_code == 0, (result.stderr, result.exception)
    with open(os.path.join(dest, "a.bin"), "rb") as fh:
        assert fh.read() == b"alpha"


def test_a_folder_pulled_into_then_pushed_does_not_send_drivestages_own_state(
        emulator, drive_env, local_state, tmp_path):
    """Pull ``drive:F`` into DEST, push ``DEST/F`` to ``drive:G``, pull ``drive:G`` on
    another machine: the push sent DEST's ``.drivestage`` folder (the pull's stamps) to
    Drive, and the last pull failed on it (``the name .drivestage is where drivestage keeps
    its stamps and locks ...; rename that item on Drive``). Names drivestage keeps for its
    state (``.drivestage``, ``.drivestage-*``, partial downloads and their range records)
    are never pushed."""
    emulator.add_file("F/ok.bin", b"fine")
    dest = tmp_path / "d"
    assert CliRunner().invoke(cli, ["pull", "drive:F", str(dest)]).exit_code == 0
    assert (dest / "F" / ".drivestage").is_dir()
    (dest / "F" / ".x.0123456789abcdef.ranges").write_bytes(b"{}")   # a range record
    pushed = CliRunner().invoke(cli, ["push", str(dest / "F"), "drive:G"])
    assert pushed.exit_code == 0, (pushed.stderr, pushed.exception)
    assert emulator.find("G/.drivestage") is None
    assert emulator.find("G/.x.0123456789abcdef.ranges") is None
    other = tmp_path / "other"
    pulled = CliRunner().invoke(cli, ["pull", "drive:G", str(other)])
    assert pulled.exit_code == 0, (pulled.stderr, pulled.exception)
    assert (other / "G" / "ok.bin").read_bytes() == b"fine"
