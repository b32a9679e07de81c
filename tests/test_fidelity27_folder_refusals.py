"""fidelity27: a folder pull in which Drive refuses one file's bytes.

Drive refuses a file it flagged as malware (403 ``cannotDownloadAbusiveFile``; its
``acknowledgeAbuse=true`` counts only for the owner or a Manager of the shared drive, so a
dataset shared with you stays refused) and one downloaded too often (403
``downloadQuotaExceeded``, lifted within 24 hours). Neither is known from the listing, unlike
a file whose download its owner restricted (``capabilities.canDownload`` false), for which a
folder pull already says how to pull the rest without it. Now the same for these two.
"""
from __future__ import annotations

import _cli
from _envs import env  # noqa: F401  (a fixture)

TEACHER = "teacher@school.edu"


def test_a_flagged_file_in_a_shared_folder_says_how_to_pull_the_rest(emulator, env,
                                                                     tmp_path):
    emulator.add_folder("VOC", owner=TEACHER, shared_with_me="reader")
    emulator.add_file("VOC/a.jpg", b"a" * 100, owner=TEACHER)
    emulator.add_file("VOC/tools/get [v2].exe", b"x" * 100, owner=TEACHER, abusive=True)
    emulator.add_file("VOC/z.jpg", b"z" * 100, owner=TEACHER)
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "-q", "drive:shared-with-me/VOC", str(dest),
                            "--acknowledge-abuse")
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert "refused --acknowledge-abuse" in line, line
    assert line.endswith(" Or pull the rest of the folder without it: --exclude "
                         "'tools/get [[]v2].exe'"), line
    # What the message says works: the rest arrives, the flagged file is left out.
    code, _, err = _cli.run("pull", "-q", "drive:shared-with-me/VOC", str(dest),
                            "--exclude", "tools/get [[]v2].exe")
    assert code == 0, err
    assert (dest / "VOC/a.jpg").read_bytes() == b"a" * 100
    assert (dest / "VOC/z.jpg").read_bytes() == b"z" * 100
    assert not (dest / "VOC/tools/get [v2].exe").exists()


def test_a_file_downloaded_too_often_in_a_folder_says_how_to_pull_the_rest(emulator, env,
                                                                         tmp_path):
    emulator.add_file("data/a.bin", b"a" * 100)
    popular = emulator.add_file("data/popular.zip", b"p" * 100)
    emulator.limit_downloads(popular, 0)
    code, _, err = _cli.run("pull", "-q", "drive:data", str(tmp_path / "d"))
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert "it was downloaded too often recently" in line, line
    assert line.endswith(" Or pull the rest of the folder without it: --exclude "
                         "'popular.zip'"), line
