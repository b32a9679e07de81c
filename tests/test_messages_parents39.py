"""The troubleshooting entries of parents39, each made to happen through the CLI, PyDrive2
and the emulator over HTTP."""
from __future__ import annotations

import _cli
from _envs import env  # noqa: F401  (a fixture)
from _messages import renders, shown
from test_attackout38_lying import DEST
from test_attacksync36_walk import _parents
from test_outside38_delete import _src


@renders("--delete: removed … of those … items from …; … left in place")
def test_push_delete_says_how_many_went_where_the_checks_left_some(emulator, env, tmp_path):
    emulator.add_file("runs/stray.txt", b"stray\n")
    emulator.add_file("Docs/report.pdf", b"%PDF a report\n")
    _parents(emulator, "Docs/report.pdf", "runs")
    emulator.list_leaves_out = {"parents"}
    code, _, err = _cli.run("push", str(_src(tmp_path)), DEST(emulator), "--delete")
    assert code == 0, err
    shown("--delete: removed … of those … items from …; … left in place", err)


@renders("taken out of … only, not deleted: it is also in another folder")
def test_a_push_takes_a_replaced_file_also_elsewhere_out_of_its_folder_only(
        emulator, env, tmp_path):
    old = emulator.add_file("runs/exp2/best.pt", b"old weights")
    emulator.store.update_meta(old, {}, add_parents=[emulator.add_folder("Archive")])
    src = _src(tmp_path)
    (src / "exp2" / "best.pt").write_bytes(b"new weights!")
    code, _, err = _cli.run("push", str(src), "drive:runs")
    assert code == 0, err
    shown("taken out of … only, not deleted: it is also in another folder", err)
