"""attackrm39: a stop's save sent alone (``DriveFolder.send_alone``) replaces the older pair
of its names as a push replaces them (stopleft31). parents39 made a push take a replaced
checkpoint's old copy that is also in another folder (a second parent kept from before 2020)
out of the run folder only (``RemoteStore.take_out``); send_alone still deleted it: the
check before the deletion left it (it would go from the other folder too), after its
sidecar had gone: the run folder held two checkpoints of the name, the old one vouched for
by no sidecar, said at every push. The real PyDrive2 stack against the emulator; real
checkpoint files."""
from __future__ import annotations

import os
import tempfile

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from test_stopleft31_replace import NAME, SPEC, _both, _md5s, _on_drive, _pair, _pushed_earlier


def test_the_older_checkpoint_also_in_another_folder_is_taken_out_of_the_run_folder_only(
        emulator, drive_env, local_state, store, tmp_path, caplog):
    from trainer.drive import DriveFolder

    old = _pushed_earlier(tmp_path)
    folder = emulator.find("Models/sl31/run")["id"]
    old_id = [f["id"] for f in emulator.store.children(folder) if f["title"] == NAME][0]
    archive = emulator.add_folder("Archive")
    emulator.store.update_meta(old_id, {}, add_parents=[archive])
    new = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-x"), weight=1.0, saved=2000.0)

    DriveFolder(SPEC, str(tmp_path / "logs")).send_alone(_both(new))

    assert _on_drive(store) == _md5s(new)
    assert emulator.store.get(old_id)["parents"] == [archive]
    assert not emulator.store.get(old_id)["trashed"]
    assert [(n, m) for n, m in _md5s(old) if n == NAME] == [
        (f["title"], f["md5"]) for f in emulator.store.children(archive)]
    assert "was not deleted" not in caplog.text
