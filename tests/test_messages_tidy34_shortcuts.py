"""docs/troubleshooting.md, "Shortcuts, links and shared items", as a push meets it
(tidy34; see tests/_messages.py): two folders of SRC that lead to one folder on Drive."""
from __future__ import annotations

from _messages import command_error as error
from _messages import renders, shown

HEADING = "is the folder … again (a shortcut to it, or a folder with two parents)"


@renders(HEADING)
def test_a_push_through_two_shortcuts_to_one_folder_is_refused_naming_both(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """SRC's ``a/`` and ``b/`` would both go into the folder DEST's shortcuts ``a`` and ``b``
    lead to: each push replaced the other's ``y.txt`` there (and left two at times). One
    line naming both, exit 1, nothing uploaded."""
    emulator.add_folder("out")
    target = emulator.add_folder("T")
    emulator.add_shortcut("out/a", target)
    emulator.add_shortcut("out/b", target)
    src = tmp_path / "src"
    for name in ("a", "b"):
        (src / name).mkdir(parents=True)
        (src / name / "y.txt").write_bytes(name.encode() * 3)
    (src / "f.txt").write_bytes(b"f")

    line = error("push", str(src), "drive:out")

    shown(HEADING, line)
    assert line == (
        "Error: drive:out/b is the folder drive:out/a again (a shortcut to it, or a folder "
        "with two parents): SRC's a/ and b/ would both be pushed into it, their files mixed; "
        "nothing was uploaded. Remove the extra shortcut on Drive, or leave one out (push "
        "--exclude 'b')")
    assert sorted(f["title"] for f in emulator.files()) == ["T", "a", "b", "out"]
