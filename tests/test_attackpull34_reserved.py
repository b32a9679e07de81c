"""attackpull34: a data root zipped whole, with the folders drivestage keeps in it.

The trainer keeps its files in ``data.root/.drivestage-trainer/`` (trainfiles33, weights33),
and a pull's stamps are in ``data.root/.drivestage/``: a data root zipped whole on one
machine and pulled with ``-x`` on another is refused, as any archive using those names is.
The line named the member and the name, but not what to do: the way out was in the
troubleshooting page alone.
"""
from __future__ import annotations

import pytest

from _archives import a_tgz, a_zip
from _cli import run


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_a_data_root_zipped_whole_is_refused_with_the_way_to_make_it_again(
        emulator, drive_env, local_state, fast_retries, tmp_path, kind):
    members = {"data/VOCdevkit/VOC2007/a.txt": b"a",
               "data/.drivestage-trainer/annotations/2007_train.txt": b"lines"}
    emulator.add_file(f"set.{kind}", a_zip(members) if kind == "zip" else a_tgz(members))
    dest = tmp_path / "d"

    code, _, err = run("pull", f"drive:set.{kind}", str(dest), "-x", "-q")

    assert code == 1
    assert err.splitlines()[-1] == (
        "Error: member 'data/.drivestage-trainer/annotations/2007_train.txt' uses the name "
        "'.drivestage-trainer', which drivestage keeps for its own state (stamps, locks, "
        "temporary folders, partial downloads, the trainer's files); refusing the archive: "
        "rename that member, or make the archive again without those folders (a data root "
        "zipped whole holds them: zip -r data.zip data -x '*/.drivestage*')")
    assert sorted(p.name for p in dest.iterdir()) == [".drivestage", f"set.{kind}"]
