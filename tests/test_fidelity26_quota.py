"""fidelity26: Drive's storage quota is shared with Gmail and Google Photos.

Drive v2's About says so in two numbers: ``quotaBytesUsed`` is Drive's own share and
``quotaBytesUsedAggregate`` what every Google service uses; ``quotaBytesTotal`` bounds the
latter (the v2 About reference; rclone's ``about`` shows the difference as "Other"). The
emulator counted Drive alone, so a push that took its free space from ``quotaBytesUsed``
passed here and on Drive skipped pruning for room, sent its uploads, and stopped on Drive's
403 storageQuotaExceeded with a message claiming gigabytes free.
"""
from __future__ import annotations

import json
import os

import pytest

import _cli
from _checkpoints import md5, sidecar_json
from _envs import env  # noqa: F401  (a fixture)
from drivestage.errors import QuotaExceededError

FOLDER = "Models/logs"


def _seed(emu) -> int:
    """Three verified checkpoints of 6,000 bytes; returns the bytes they use."""
    used = 0
    for e in (1, 2, 3):
        data = os.urandom(6000)
        emu.add_file(f"{FOLDER}/epoch_{e:03d}.pt", data)
        emu.add_file(f"{FOLDER}/epoch_{e:03d}.json", sidecar_json(e, data))
        used += len(data) + len(sidecar_json(e, data))
    return used


def test_emulator_counts_gmail_and_photos_toward_the_quota(emulator, env, tmp_path):
    from drivestage.drive import connect

    emulator.quota_bytes = emulator.store.quota_bytes = 100_000
    emulator.add_file("a.bin", bytes(1000))
    emulator.set_other_usage(gmail=60_000, photos=9_000)
    about = emulator.about()
    assert about["quotaBytesUsed"] == "1000"                 # Drive's own share
    assert about["quotaBytesUsedAggregate"] == "70000"       # what the limit bounds
    assert {s["serviceName"]: s["bytesUsed"] for s in about["quotaBytesByService"]} == \
        {"DRIVE": "1000", "GMAIL": "60000", "PHOTOS": "9000"}
    store = connect()
    folder = store.resolve("")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(40_000))  # fits beside Drive's 1,000 bytes, not beside Gmail's too
    with pytest.raises(QuotaExceededError):
        store.upload(str(big), folder, "big.bin")
    assert emulator.find("big.bin") is None
    # Over HTTP too, for tests in another process.
    import urllib.request
    req = urllib.request.Request(emulator.url + "_emulator/set_other_usage",
                                 data=json.dumps({"photos": 5}).encode(), method="POST")
    with urllib.request.urlopen(req) as answer:
        assert json.loads(answer.read()) == {"result": None}
    assert emulator.about()["quotaBytesUsedAggregate"] == "1005"


def test_quota_counts_what_other_google_services_use(emulator, env):
    emulator.quota_bytes = emulator.store.quota_bytes = 100_000
    emulator.add_file("a.bin", bytes(1000))
    emulator.set_other_usage(gmail=60_000, photos=9_000)
    shown = json.loads(_cli.ok("quota", "--json"))
    assert shown["total"] == 100_000
    assert shown["used"] == 70_000
    assert shown["free"] == 30_000
    assert shown["other"] == 69_000
    assert _cli.ok("quota") == "used 68.4 KiB of 97.7 KiB (70%; Gmail and Google Photos " \
        "67.4 KiB of it), 0 B in the trash, 29.3 KiB free\n"


def test_push_prunes_for_room_when_gmail_holds_the_rest_of_the_quota(emulator, env, tmp_path):
    used = _seed(emulator)
    # Drive alone leaves room for the new checkpoint; with Gmail's share it does not.
    emulator.quota_bytes = emulator.store.quota_bytes = used + 20_000
    emulator.set_other_usage(gmail=15_000)
    src = tmp_path / "run"
    src.mkdir()
    new = os.urandom(6000)
    (src / "epoch_004.pt").write_bytes(new)
    (src / "epoch_004.json").write_bytes(sidecar_json(4, new))
    code, _, err = _cli.run("push", str(src), f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert "pruning first" in err
    top = emulator.find(FOLDER)["id"]
    live = {f["title"]: f.get("md5Checksum") for f in emulator.files()
            if not f["labels"]["trashed"] and any(p["id"] == top for p in f["parents"])}
    assert live == {"epoch_004.pt": md5(new), "epoch_004.json": md5(sidecar_json(4, new))}


def test_push_that_cannot_fit_names_the_free_space_drive_has(emulator, env, tmp_path):
    emulator.quota_bytes = emulator.store.quota_bytes = 100_000
    emulator.set_other_usage(gmail=95_000)
    src = tmp_path / "run"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(20_000))
    code, _, err = _cli.run("push", str(src), f"drive:{FOLDER}")
    assert code == 1
    line = [ln for ln in err.splitlines() if "Not enough Drive storage" in ln]
    assert line and "needed 19.5 KiB, free 4.9 KiB" in line[0], err
    assert emulator.find(f"{FOLDER}/a.bin") is None


@pytest.mark.parametrize("how", ["shortcut", "the shortcut itself", "id"])
def test_push_into_a_shared_drive_folder_is_not_held_to_my_drive_quota(emulator, env, tmp_path,
                                                                       how):
    # Items in a shared drive count toward the organisation's storage, never the user's
    # (the v2 About describes the user's): a full personal quota must not stop a push into
    # a shared drive's folder reached from My Drive, through a shortcut or by its id (a
    # sharing link), as it does not stop one to drive:shared/<name>/.
    emulator.quota_bytes = emulator.store.quota_bytes = 50_000
    emulator.set_other_usage(gmail=49_000)
    team = emulator.add_shared_drive("Team")
    runs = emulator.add_folder("runs", drive_id=team)
    emulator.add_shortcut("Models/team", runs)
    src = tmp_path / "run"
    src.mkdir()
    data = os.urandom(20_000)
    (src / "a.bin").write_bytes(data)
    dest = {"shortcut": "drive:Models/team/run1", "the shortcut itself": "drive:Models/team",
            "id": f"drive:id:{runs}/run1"}[how]
    code, _, err = _cli.run("push", str(src), dest)
    assert code == 0, err
    assert "1 uploaded" in err
    made = emulator.find("runs/a.bin" if how == "the shortcut itself" else "runs/run1/a.bin",
                         drive_id=team)
    assert made is not None and made["md5Checksum"] == md5(data)
    assert emulator.about()["quotaBytesUsed"] == "0"   # nothing of it on the user's quota
