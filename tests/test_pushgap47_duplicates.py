"""pushgap47 (2b): the "N files had this name" line counted only the copies it removed, and
said "removed the others" where one stayed: another writer's later copy (retain47's
``_later_work``: its sidecar may be on its way). With ``last.pt`` three times on Drive it said
"2 files had this name (ids <one>); … removed the others". Now it counts every copy, and
names the one removed and the one left.

Drive as machine B leaves it mid-push (retain47's two-machine race, here without the second
process): ``last.pt`` v1 with ``last.json`` vouching for it, then B's ``last.pt`` v2 (its
sidecar not sent yet). Machine A's ``last.pt`` is v1."""
from __future__ import annotations

import os

from _checkpoints import md5, sidecar_json
from _cli import run
from _drive_state import live_md5s
from _envs import env  # noqa: F401  (a fixture)

FOLDER = "Models/logs"


def test_the_duplicates_line_counts_every_copy_and_names_the_one_left(emulator, env, tmp_path):
    v1, v2 = os.urandom(3000), os.urandom(3000)
    old = emulator.add_file(f"{FOLDER}/last.pt", v1)
    emulator.add_file(f"{FOLDER}/last.json", sidecar_json(1, v1))
    theirs = emulator.add_file(f"{FOLDER}/last.pt", v2)
    src = tmp_path / "a"
    src.mkdir()
    (src / "last.pt").write_bytes(v1)
    (src / "last.json").write_bytes(sidecar_json(1, v1))
    code, _, err = run("push", str(src), f"drive:{FOLDER}")
    assert code == 0, err
    live = live_md5s(emulator, FOLDER)["last.pt"]
    assert sorted(live) == sorted([md5(v1), md5(v2)]), err
    kept = [f["id"] for f in emulator.files() if f["title"] == "last.pt"
            and not f["labels"]["trashed"] and f["id"] != theirs]
    said = [ln for ln in err.splitlines() if "files had this name" in ln]
    assert said == [
        f"WARNING drivestage.old_copies: last.pt: 3 files had this name (ids {old}, {theirs}); "
        f"kept the one just uploaded ({kept[0]}), removed 1 ({old}), and left 1 ({theirs}): a "
        "sidecar still vouches for it, or another writer sent it since; a later push removes "
        "it once that is no longer so"], err
