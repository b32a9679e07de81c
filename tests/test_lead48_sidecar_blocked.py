"""A folder on the store at a checkpoint's SIDECAR name (pushshared48 held back a blocked
checkpoint's sidecar; the reverse was open): the checkpoint is held back too, so the copy on
the store stays the one its sidecar vouches for. Real CLI against the emulator and a local
DEST."""
from __future__ import annotations

import hashlib
import json

from _checkpoints import save
from _cli import run
from _drive_state import live_md5s
from _envs import env  # noqa: F401  (a fixture)
from test_attacksync34_names import folder_at_the_sidecar

T0 = 1764600000.0


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def test_a_folder_beside_the_sidecar_on_drive_holds_its_checkpoint_back(
        emulator, drive_env, local_state, tmp_path):
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    first = _md5(src / "last.pt")
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    emulator.add_folder("runs/a/last.json")
    save(str(src), "last", 2, T0 + 60)
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 1, err
    # The copy on Drive is still the one its sidecar (still beside the folder) vouches for.
    assert live_md5s(emulator, "runs/a")["last.pt"] == [first], err
    sidecars = [f for f in emulator.files() if f["title"] == "last.json"
                and f.get("mimeType") != "application/vnd.google-apps.folder"
                and not f["labels"]["trashed"]]
    assert len(sidecars) == 1
    assert json.loads(emulator.read_bytes(sidecars[0]["id"]))["md5"] == first, err


def test_a_folder_at_the_sidecar_name_in_a_local_dest_holds_its_checkpoint_back(
        local_state, tmp_path):
    src, dest = folder_at_the_sidecar(tmp_path)
    first = _md5(dest / "last.pt")   # (the first push's copy)
    assert first != _md5(src / "last.pt")
    code, _, err = run("push", str(src), str(dest))
    assert code == 1, err
    assert _md5(dest / "last.pt") == first, err
    assert "a folder on Drive" not in err, err
