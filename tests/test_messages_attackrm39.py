"""The troubleshooting entry of attackrm39, made to happen through the CLI, PyDrive2 and the
emulator over HTTP."""
from __future__ import annotations

from _cli import run
from _messages import renders, shown
from test_attackrm39_takeout import _before_update, _world


@renders("taken out of … only, not deleted; it was no longer in its other folder")
def test_a_copy_taken_out_after_its_other_folder_went_says_where_it_is(
        emulator, local_state, drive_env, tmp_path, monkeypatch):
    old, archive, src = _world(emulator, tmp_path)
    _before_update(emulator, monkeypatch, lambda: emulator.store.update_meta(
        old, {}, remove_parents=[archive]))
    code, _, err = run("push", str(src), "drive:runs")
    assert code == 0, err
    shown("taken out of … only, not deleted; it was no longer in its other folder", err)
