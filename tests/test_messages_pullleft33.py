"""Messages of the pullleft33 fixes, as the user sees them (see docs/troubleshooting.md).

- A tar whose pax / GNU long-name headers take more to read, in all, than drivestage gives
  one archive: a few MB of tar.gz with a near-1-MiB header before each of thousands of
  members held the CPU for minutes while its members were listed (then it was extracted,
  exit 0). The bounds are made small here: the test reads about a MB.
"""
from __future__ import annotations

import gzip

import pytest

import _cli
from _archives import tree
from _messages import error_line, renders, shown
from test_pullleft33_tar_total import _member


@pytest.fixture
def small_bounds(monkeypatch):
    from drivestage.extract import tarinfo

    monkeypatch.setattr(tarinfo, "MAX_EXTENDED_BASE", 1 << 20, raising=False)
    monkeypatch.setattr(tarinfo, "MAX_EXTENDED_PER_MEMBER", 1 << 10, raising=False)


@pytest.mark.parametrize("name", ["set.tgz", "set.tar"])
@renders("take more to read than drivestage gives one archive")
def test_an_archive_whose_extended_headers_take_too_much_in_all_is_refused(
        emulator, local_state, drive_env, fast_retries, tmp_path, small_bounds, name):
    raw = b"".join(_member(f"m{i:03d}.txt", 64 << 10) for i in range(40)) + bytes(1024)
    data = gzip.compress(raw, mtime=0) if name.endswith("tgz") else raw
    emulator.add_file(f"d/{name}", data)
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", f"drive:d/{name}", str(dest), "-x", "-q")

    assert code == 1, err
    shown("take more to read than drivestage gives one archive", error_line(err))
    assert error_line(err) == (
        f"Error: cannot read the tar {dest / name}: its pax and GNU long-name headers take "
        "more to read than drivestage gives one archive (1 MiB, and 1 KiB a member: a tar "
        "writes a few hundred bytes a member), past it after 16 members; make it again "
        "without extended attributes (GNU tar --no-xattrs --no-acls, bsdtar --no-xattrs "
        "--no-mac-metadata) or split it into smaller archives, and upload it")
    assert tree(dest) == {name: data}   # downloaded and verified; nothing extracted
