"""A folder pull whose ``--include``/``--exclude`` choose no file names what the folder holds
(ux35). A folder that a Drive mount synced drivestage's own state into (a pull's stamps in
``.drivestage``, the trainer's ``.drivestage-trainer``, a DEST's ``.drivestage-trash``, a
killed pull's ``.VOC2007.tar.<key>.partial``) listed those first, as what the folder holds,
before the user's files (five names shown, then "and N more"): ``(it holds .drivestage,
.drivestage-trainer, .drivestage-trash, .VOC2007.tar….partial, VOC2007.tar and 1 more)``,
names no pull takes and the user never made. Found by attack36."""
from __future__ import annotations

from _cli import run


def test_the_names_drivestage_keeps_are_not_said_to_be_what_the_folder_holds(
        emulator, drive_env, local_state, tmp_path):
    emulator.add_file("VOC_datasets/VOC2007.tar", b"t" * 10)
    emulator.add_file("VOC_datasets/VOC2012.tar", b"u" * 10)
    emulator.add_file("VOC_datasets/.drivestage/VOC2007.tar.json", b"{}")
    emulator.add_file("VOC_datasets/.drivestage-trainer/lines", b"l")
    emulator.add_file("VOC_datasets/.drivestage-trash/old.tar", b"o")
    emulator.add_file("VOC_datasets/.VOC2007.tar.0123456789abcdef.partial", b"p")
    dest = tmp_path / "data"

    code, out, err = run("pull", "drive:VOC_datasets", str(dest), "--include", "*.zip")

    assert code == 1, err
    assert err == ("Error: --include '*.zip' leaves no file of drive:VOC_datasets to pull (it "
                   "holds VOC2007.tar, VOC2012.tar); check the globs (case-sensitive, matched "
                   "to the path inside the folder or to the name)\n")
    assert not dest.exists()


def test_a_folder_of_drivestage_state_alone_is_said_to_be_empty(
        emulator, drive_env, local_state, tmp_path):
    emulator.add_file("runs/.drivestage/run-folder", b"")
    code, _out, err = run("pull", "drive:runs", str(tmp_path / "d"), "--include", "*.pt")
    assert code == 1, err
    assert "leaves no file of drive:runs to pull (it is empty)" in err, err
