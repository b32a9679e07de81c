"""``drivestage ls`` says why a file cannot be downloaded as the listing shows it, for this
account (include29): it marked every such file "(its owner turned off downloading for
viewers)", an editor's and a shared drive's included, and a file Drive lists without a
checksum too. What the mark says is in the listing itself: ls of a folder stays one listing,
never a request per file."""
from __future__ import annotations

from click.testing import CliRunner

from _envs import env  # noqa: F401  (a fixture)
from drivestage.cli import cli


def _rows(path):
    result = CliRunner().invoke(cli, ["ls", path])
    assert result.exit_code == 0, result.stderr
    return {r.split("  ")[-2 if r.endswith(")") else -1].strip(): r
            for r in result.stdout.splitlines()}


def _mark(rows, name):
    row = next(r for r in rows.values() if f"  {name}  (" in r or r.endswith(f"  {name}"))
    return row.split(f"  {name}", 1)[1].strip()


def test_ls_marks_a_viewer_an_editor_a_shared_drive_and_a_file_without_checksum(emulator, env):
    folder = emulator.add_folder("Class", owner="teacher@school.edu", shared_with_me="reader")
    emulator.add_shortcut("Class", folder)
    viewer = emulator.add_file("Class/voc.zip", b"v" * 100, owner="teacher@school.edu")
    emulator.restrict_download(viewer)
    emulator.add_file("Class/readme.txt", b"r", owner="teacher@school.edu")
    team = emulator.add_folder("Team", owner="lead@lab.org", shared_with_me="writer")
    emulator.add_shortcut("Team", team)
    editor = emulator.add_file("Team/data.zip", b"d" * 100, owner="lead@lab.org")
    emulator.restrict_download(editor, writers=True)
    drive = emulator.add_shared_drive("Team Data", role="reader")
    emulator.add_file("VOC/set.zip", b"s" * 100, drive_id=drive)
    emulator.restrict_drive_downloads(drive)
    old = emulator.add_file("papers/old.pdf", b"%PDF" * 100)
    emulator.set_checksums(old, md5=None, sha1=None, sha256=None)

    rows = _rows("drive:Class")
    assert _mark(rows, "voc.zip") == "(its owner turned off downloading for viewers)"
    assert _mark(rows, "readme.txt") == ""
    assert _mark(_rows("drive:Team"), "data.zip") == \
        "(downloading is turned off, even for editors like you)"
    emulator.clear_requests()
    assert _mark(_rows("drive:shared/Team Data/VOC"), "set.zip") == \
        "(downloading turned off for viewers: the shared drive's setting or an editor's)"
    assert _mark(_rows("drive:papers"), "old.pdf") == \
        "(Drive lists no checksum: it could not be verified)"


def test_ls_of_a_big_folder_is_one_listing(emulator, env):
    folder = emulator.add_folder("Class", owner="teacher@school.edu", shared_with_me="reader")
    emulator.add_shortcut("Class", folder)
    for i in range(30):
        fid = emulator.add_file(f"Class/part{i:02d}.zip", b"p", owner="teacher@school.edu")
        emulator.restrict_download(fid)
    emulator.clear_requests()
    rows = _rows("drive:Class")
    assert all(r.endswith("(its owner turned off downloading for viewers)")
               for r in rows.values()), rows
    # the path's name looked up, the folder read and listed: nothing per file (30 of them)
    api = [r for r in emulator.requests if not r.path.startswith("/_emulator")]
    assert len(api) <= 3, [(r.kind, r.path) for r in api]
