"""A Google Doc at a checkpoint sidecar's name (another client's), by attacksync33."""
from __future__ import annotations

import hashlib

from _cli import run
from _drive_state import live_md5s
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)

DOC = "application/vnd.google-apps.document"


def test_a_google_doc_at_a_sidecars_name_stops_no_push_and_is_left_alone(emulator, env,
                                                                         tmp_path):
    """Another client turned ``epoch_003.json`` on Drive into a Google Doc (converted it, or
    put a Doc of that name there). Drive refuses a Doc's download (403 fileNotDownloadable),
    so reading it as the sidecar ended every push and prune of the folder: `Error: download
    drive:runs/a/epoch_003.json bytes 0-196: permission denied ... Check that this account can
    access the file` (exit 1), the run's new epochs not sent. Where the local sidecar of that
    name was sent, the Doc was updated in place and the push ended in "Drive kept the old
    version". A file Drive holds no bytes of is no sidecar and no copy of a local file: the
    push sends the sidecar beside it and prunes as before; the Doc stays as it was."""
    src = tmp_path / "a"
    src.mkdir()
    for epoch in (1, 2, 3):
        _save(str(src), epoch)
    code, _, err = run("push", str(src), "drive:runs/a", "--keep-last", "2")
    assert code == 0, err
    doc = emulator.find("runs/a/epoch_003.json")["id"]
    emulator.store.update_meta(doc, {"mimeType": DOC})
    _save(str(src), 4)

    code, _, err = run("push", str(src), "drive:runs/a", "--keep-last", "2")

    assert code == 0, err
    side = hashlib.md5((src / "epoch_003.json").read_bytes()).hexdigest()
    assert set(live_md5s(emulator, "runs/a")["epoch_003.json"]) == {None, side}  # Doc, sidecar
    assert set(live_md5s(emulator, "runs/a")) == {"epoch_003.pt", "epoch_003.json",
                                                  "epoch_004.pt", "epoch_004.json"}
    kept = [f for f in emulator.files() if f["id"] == doc]
    assert kept[0]["mimeType"] == DOC and not kept[0]["labels"]["trashed"]

    code, _, err = run("prune", "drive:runs/a", "--keep-last", "1")
    assert code == 0, err
    left = live_md5s(emulator, "runs/a")
    assert set(left) == {"epoch_004.pt", "epoch_004.json", "epoch_003.json"}
    assert left["epoch_003.json"] == [None]   # the Doc alone

