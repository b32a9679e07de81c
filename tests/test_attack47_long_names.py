"""Member names as long as an archive may make them count toward the memory cap.

``members.MAX_MEMBERS`` holds an extraction to 1 GB by counting members at
``members.BYTES_PER_MEMBER`` each, a cost measured with names of 20 bytes. Each member's name
stays in memory from the listing to the merge, and a tar's pax header gives a member a name
of up to 1 MiB (a path of 4,000 bytes is legal on Linux): a tar.gz of 1.4 MB, 20,000 members
of 3.8 KB names, took 90 MB to list, 4.5 KB a member; at the member cap, 6 GB before any
check (attack47). Here the cap is lowered to 2,000 members (2.3 MiB with the allowance for names),
and 800 members of 4,000-byte names (3.2 MB of names) are refused, as an archive of too many
members is: one Error: line, exit 1, the download kept and nothing extracted.
"""
from __future__ import annotations

import os

import pytest

import drivestage
from drivestage.extract import members

from _archives import a_tgz, a_zip
from _cli import run
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

#: A path of 4,000 bytes: 19 folders of 200 bytes, then the file's own name.
_LONG = ("d" * 200 + "/") * 19


def _files(n: int) -> dict[str, bytes]:
    return {f"{_LONG}f{i:04d}.txt": b"x" for i in range(n)}


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_an_archive_whose_names_take_more_than_the_cap_is_refused(
        emulator, drive_env, tmp_path, monkeypatch, kind):
    from drivestage.extract import extract

    monkeypatch.setattr(members, "MAX_MEMBERS", 2000)
    blob = a_zip(_files(800)) if kind == "zip" else a_tgz(_files(800))
    name = f"set.{'zip' if kind == 'zip' else 'tar.gz'}"
    local = tmp_path / "local"
    local.mkdir()
    (local / name).write_bytes(blob)
    with pytest.raises(drivestage.errors.UnsafeArchiveError) as caught:
        extract(str(local / name), str(local))
    said = str(caught.value)
    assert said.startswith(f"{local / name}: the names of its first ") and said.endswith(
        "more than the 2.3 MiB of memory drivestage lists one archive in (2,000 members of "
        "short names); split it into smaller archives"), said
    assert sorted(os.listdir(local)) == [name]
    emulator.add_file(f"d/{name}", blob)
    dest = tmp_path / "data"
    code, out, err = run("pull", f"drive:d/{name}", str(dest), "-x", "-q")
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"Error: {dest / name}: the names of its first ") and \
        line.endswith("split it into smaller archives"), err
    assert sorted(os.listdir(dest)) == [".drivestage", name]
    assert (dest / name).read_bytes() == blob


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_short_names_up_to_the_member_cap_are_extracted(tmp_path, monkeypatch, kind):
    """The names' charge is only what they take beyond the 20 bytes the cap counts: an
    archive of exactly MAX_MEMBERS members of dataset-like names is extracted."""
    from drivestage.extract import extract

    monkeypatch.setattr(members, "MAX_MEMBERS", 300)
    files = {f"ds/{i // 100}/{i:05d}.jpg": b"x" for i in range(300)}   # (12 bytes)
    blob = a_zip(files) if kind == "zip" else a_tgz(files)
    name = f"set.{'zip' if kind == 'zip' else 'tar.gz'}"
    (tmp_path / name).write_bytes(blob)
    extract(str(tmp_path / name), str(tmp_path / "out"))
    assert sum(f.endswith(".jpg") for _, _, fs in os.walk(tmp_path / "out") for f in fs) == 300


def test_the_memory_cap_with_names_and_folders_stays_under_a_gigabyte():
    """What members.MAX_MEMBERS says: the largest archive accepted stays under 1 GB, its
    names and folders counted."""
    assert members.memory_cap() <= 1_000_000_000
