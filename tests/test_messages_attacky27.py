"""docs/troubleshooting.md: two archives of one folder pull that disagree on a path's kind,
the earlier one's folder where the later one has a file (attacky27; see
tests/test_attacky27_kinds.py for the other way round)."""
from __future__ import annotations

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line, renders, shown
from test_attack15_extract import _tar
from test_attacky27_kinds import _ds
from test_two_archives26 import _zip


@renders("pulled with it, has a folder there")
def test_a_later_archives_file_over_an_earlier_ones_folder_names_both(emulator, env,
                                                                      tmp_path):
    """The other way round a later archive's file cannot replace the earlier one's folder
    (it may hold anything): every pull failed with `move that folder away`, which only made
    the next pull extract it again. Now the line names both archives and what to do."""
    emulator.add_file("src/a.zip", _zip({"ds/x/in": b"inside", "ds/a": b"a"}))
    emulator.add_file("src/b.tar.gz", _tar({"ds/x": b"file", "ds/b": b"b"}, gz=True))
    dest = tmp_path / "d"
    for _ in range(2):
        code, out, err = run("pull", "-q", "drive:src", str(dest), "-x")
        assert code == 1
        line = error_line(err)
        assert line == (
            f"Error: drive:src/b.tar.gz: member ds/x is a file, but drive:src/a.zip, pulled "
            f"with it, has a folder there ({dest / 'src/ds/x'}); the two cannot both be "
            "extracted into one place: pull the rest without it (--exclude 'b.tar.gz'), or "
            "each into its own DEST"), line
        shown("pulled with it, has a folder there", line)
    assert _ds(dest) == {"src/ds/a": b"a", "src/ds/x/in": b"inside"}   # a's, untouched
    code, out, err = run("pull", "-q", "drive:src", str(dest), "-x", "--exclude", "b.tar.gz")
    assert code == 0, err
    assert _ds(dest) == {"src/ds/a": b"a", "src/ds/x/in": b"inside"}
