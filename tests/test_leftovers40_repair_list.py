"""A ``pull -x`` that puts back a member deleted by hand lists the archive's members once
(leftovers40): it listed them for the progress bar's total
(``stage_extraction._extracted_total``), then again for the extraction (from a cache, each
entry copied: 60,000 copies for one member put back). The bar's total is what is written."""
from __future__ import annotations

import os

import drivestage.extract.members as members
from _archives import a_fixed_zip, tree
from drivestage.stage import pull

MEMBERS = {f"ds/{i:03d}.txt": f"member {i}\n".encode() for i in range(100)}


def test_putting_back_one_member_lists_the_archive_once(emulator, local_state, drive_env,
                                                        fast_retries, tmp_path, monkeypatch):
    emulator.add_file("F/a.zip", a_fixed_zip(MEMBERS))
    dest = tmp_path / "data"
    pull("drive:F/a.zip", str(dest), extract=True, quiet=True)
    os.unlink(dest / "ds/042.txt")
    listed: list[str] = []
    original = members.list_members_of

    def counting(archive, fd, *rest):
        listed.append(archive)
        return original(archive, fd, *rest)
    monkeypatch.setattr(members, "list_members_of", counting)
    bars: list[tuple[str, int, int]] = []

    def progress(label, total, initial):
        bars.append((label, total, initial))
        return lambda n: None

    pull("drive:F/a.zip", str(dest), extract=True, progress=progress)

    assert {k: v for k, v in tree(dest).items() if k != "a.zip"} == MEMBERS
    assert listed == [str(dest / "a.zip")]
    assert bars == [("extract", len(MEMBERS["ds/042.txt"]), 0)]
