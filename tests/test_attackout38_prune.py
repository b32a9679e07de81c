"""attackout38: retention deletes *files*, and Drive's delete (or trash) takes a file from
every folder it is in. A checkpoint filed before 2020 in ``Models/logs`` and in
``Archive`` too: ``prune drive:Models/logs --keep-last 1`` deleted it from ``Archive``, a
folder the prune was never pointed at. Now the check before each deletion (one files.get,
made already) sees the parent the prune did not reckon with and leaves the file, in both
folders, said in one line; its sidecar stays with it; the other deletions go; exit 0.

Why not take only ``Models/logs``'s link away (files.update ``removeParents``, which Drive
allows)? A link taken away cannot be put back (Drive refuses a second parent since 2020:
``parents.insert`` "adding files to multiple folders is no longer supported"), and the
trash cannot give it back either: the user's filing would be lost for good. The line says
how to let it go (take it out of ``Models/logs``), which the user can see and choose.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP, whose delete
takes the file from all its folders). No sleeps."""
from __future__ import annotations

import _cli
from _envs import env  # noqa: F401  (a fixture)
from test_drive_batch_deletes import _live, _seed


def test_a_checkpoint_also_in_another_folder_is_left_by_prune(emulator, env):
    ids = _seed(emulator, 4)
    archive = emulator.add_folder("Archive")
    emulator.store.update_meta(ids[0], {}, add_parents=[archive])

    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")

    assert code == 0, err
    assert ids[0] in emulator.store.files and not emulator.store.get(ids[0])["trashed"], err
    assert [c["title"] for c in emulator.store.children(archive)] == ["epoch_001.pt"]
    assert _live(emulator) == {"epoch_001.pt", "epoch_004.pt"}, err
    assert ("WARNING drivestage.drive.store: drive:Models/logs/epoch_001.pt was not deleted: "
            "it is also in another folder (an item with two parents, kept from before 2020), "
            "and its removal would take it from there too. Take it out of drive:Models/logs "
            "on Drive (it stays in its other folder) to let it go") in err.splitlines(), err


def test_with_the_trash_too(emulator, env):
    ids = _seed(emulator, 3)
    archive = emulator.add_folder("Archive")
    emulator.store.update_meta(ids[1], {}, add_parents=[archive])

    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1", "--use-trash")

    assert code == 0, err
    assert not emulator.store.get(ids[1])["trashed"], err
    assert emulator.store.get(ids[0])["trashed"], err
    assert _live(emulator) == {"epoch_002.pt", "epoch_003.pt"}, err
