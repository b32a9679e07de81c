"""The troubleshooting entries on items with two parents (outside38, attackout38), each
made to happen through the CLI, PyDrive2 and the emulator over HTTP."""
from __future__ import annotations

import _cli
from _envs import env  # noqa: F401  (a fixture)
from _messages import renders, shown
from test_drive_batch_deletes import _seed
from test_outside38_delete import _deep, _src


@renders("--delete kept …: it holds …, which is also in …")
def test_push_delete_keeps_a_folder_holding_an_item_also_outside(emulator, env, tmp_path):
    _deep(emulator)
    code, _, err = _cli.run("push", str(_src(tmp_path)), "drive:runs", "--delete")
    assert code == 0, err
    shown("--delete kept …: it holds …, which is also in …", err)


@renders("… was not deleted: it is also in another folder (an item with two parents …)")
def test_prune_leaves_a_checkpoint_also_in_another_folder(emulator, env):
    ids = _seed(emulator, 3)
    emulator.store.update_meta(ids[0], {}, add_parents=[emulator.add_folder("Archive")])
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    shown("… was not deleted: it is also in another folder (an item with two parents …)", err)
