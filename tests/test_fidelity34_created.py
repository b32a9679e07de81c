"""fidelity34: Drive keeps the ``createdDate`` a client gives a new file.

The v2 File marks neither ``createdDate`` nor ``modifiedDate`` "Output only" (it marks
``version``, ``md5Checksum``, ``ownedByMe``...), and rclone's drive backend sets createdTime
from a file's birth time on a fresh upload (its metadata "btime … only writable on fresh
uploads", with ``--metadata``) and modifiedTime from its mtime. The emulator stamped both
with the time of arrival whatever the client sent; it now keeps them, as Drive does.

drivestage's retention took the later of the two for when Drive received a file, so a
sidecar an uploader sends first with dates a year old looked a year old the moment it landed
and went as an orphan at once (fidelity34's strict xfail; fixed by arrival34: a first-seen
mark, :mod:`drivestage.first_seen`; more in tests/test_arrival34_first_seen.py).
"""
from __future__ import annotations

from googleapiclient.http import MediaFileUpload

from _checkpoints import save
from _cli import ok
from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect

FOLDER = "Models/logs"
YEAR_AGO = "2025-12-01T10:00:00.000Z"


def _send_as_rclone(emulator, path, folder_id: str) -> dict:
    """``path`` sent into ``folder_id`` as rclone --metadata sends a file made a year ago."""
    service = connect(api_root=emulator.url, token="test-token").service
    return service.files().insert(
        body={"title": path.name, "parents": [{"id": folder_id}], "createdDate": YEAR_AGO,
              "modifiedDate": YEAR_AGO},
        media_body=MediaFileUpload(str(path), mimetype="application/json"),
        supportsAllDrives=True).execute()


def test_a_new_file_keeps_the_dates_its_client_gave(emulator, env, tmp_path):
    folder = emulator.add_folder(FOLDER)
    src = tmp_path / "b"
    save(str(src), "epoch_003", 3, 1764600000.0)
    made = _send_as_rclone(emulator, src / "epoch_003.json", folder)
    assert (made["createdDate"], made["modifiedDate"]) == (YEAR_AGO, YEAR_AGO)
    again = emulator.find(f"{FOLDER}/epoch_003.json")
    assert (again["createdDate"], again["modifiedDate"]) == (YEAR_AGO, YEAR_AGO)


def test_a_sidecar_sent_first_with_old_dates_is_kept_while_its_checkpoint_comes(
        emulator, env, tmp_path):
    """Machine B's rclone --metadata sends the small sidecar first; a prune on this machine
    runs before the checkpoint lands. The sidecar may be the first half of an upload: it must
    stay (as one whose modifiedDate alone is old does)."""
    folder = emulator.add_folder(FOLDER)
    src = tmp_path / "b"
    save(str(src), "epoch_003", 3, 1764600000.0)
    _send_as_rclone(emulator, src / "epoch_003.json", folder)
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1")
    rows = [line for line in out.splitlines() if "  epoch_003.json  " in line]
    assert len(rows) == 1 and rows[0].split()[0] == "keep", out
