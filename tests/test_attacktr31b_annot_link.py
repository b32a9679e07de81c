"""attacktr31b: a data root that is a symbolic link into a folder a pull with ``-x`` staged
(``drivestage pull drive:d/all.zip /content/datasets -x``, then ``ln -s
/content/datasets/data /content/data`` and ``data.root: /content/data``): the archive's
stamp is above the link's target, not above the link, so its ``annotations/2007_train.txt``
was not seen and the trainer wrote this machine's lines over it (the next pull put it back,
downloading the archive again where it was removed). Since trainfiles33 the lines go to the
trainer's own folder; the retirement of the old ones must see the member all the same."""
from __future__ import annotations

import os


def test_a_data_root_linked_into_a_pulled_folder_sees_the_archives_members(
        emulator, local_state, drive_env, tmp_path):
    import drivestage
    from _archives import a_fixed_zip
    from trainer.derived import _recorded

    emulator.add_file("d/all.zip", a_fixed_zip({"data/annotations/2007_train.txt": b"x\n",
                                                "data/other.txt": b"y"}))
    drivestage.pull("drive:d/all.zip", str(tmp_path / "datasets"), extract=True, quiet=True)
    os.symlink(tmp_path / "datasets" / "data", tmp_path / "data")

    assert _recorded(str(tmp_path / "data"), ["annotations/2007_train.txt"]) == \
        {"annotations/2007_train.txt"}
