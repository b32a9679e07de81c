"""What the first-seen mark tests (arrival34, seen35, seen36: :mod:`drivestage.first_seen`)
share: the run folder a prune reads, files sent as ``rclone copy -M`` sends them, the marks
on Drive, a day passing (dates and marks moved back, no sleeps), and the runs they split."""
from __future__ import annotations

import time
from typing import Any, Callable

from _checkpoints import RUN, save
from _cli import ok
from _drive_state import held_since, live_md5s
from _envs import env  # noqa: F401  (a fixture)
from drivestage import first_seen
from drivestage.drive import connect

FOLDER = "Models/logs"
SPEC = f"drive:{FOLDER}"
OLD = "Models/old"
YEAR_AGO = "2025-12-01T10:00:00.000Z"
T0 = 1764600000.0
DAY = 24 * 3600
OLD_RUN = "20251130-101010-bbbb"


def autosave(n: int) -> str:
    """Autosave ``n``'s stem."""
    return f"autosave_{n:08d}"


def id_of(emu, path: str) -> str:
    """The Drive id of the file at ``path``."""
    return emu.find(path)["id"]


def plan_row(out: str, name: str) -> tuple[str, str]:
    """The action and the reason of ``name``'s line of the plan's table."""
    rows = [line for line in out.splitlines() if f"  {name}  " in line]
    assert len(rows) == 1, out
    return rows[0].split()[0], rows[0].split(f"  {name}  ", 1)[1].strip()


def marks_of(emu, file_id: str) -> list:
    """The values of ``file_id``'s first-seen marks on Drive."""
    return [p["value"] for p in emu.properties_of(file_id)
            if p["key"] == first_seen.SEEN_MARK and p["visibility"] == "PUBLIC"]


def a_day_passes(emu, folder: str, by: float = DAY + 3600) -> None:
    """Every file in ``folder`` arrived ``by`` seconds earlier than it did, and every
    first-seen mark there was written as much earlier (its times, whatever its form)."""
    top = emu.find(folder)["id"]
    for f in emu.files():
        if not any(p["id"] == top for p in f.get("parents") or []):
            continue
        rec = emu.store.get(f["id"])
        for value in marks_of(emu, f["id"]):   # (first: the seeding API dates it now)
            parts = value.split(":")
            moved = [str(int(p) - int(by)) if int(p) else p   # (0: no sighting, seen36)
                     for p in parts[:2] if p.isdigit()]
            emu.set_properties(f["id"], [{"key": first_seen.SEEN_MARK, "visibility": "PUBLIC",
                                          "value": ":".join(moved + parts[len(moved):])}])
        emu.store.update(f["id"], created=rec["created"] - by, modified=rec["modified"] - by)


def send_old(emu, path, folder_id: str) -> str:
    """``path`` sent into ``folder_id`` as ``rclone copy -M`` sends a file made a year ago.
    Returns its id."""
    from googleapiclient.http import MediaFileUpload
    service = connect(api_root=emu.url, token="test-token").service
    return service.files().insert(
        body={"title": path.name, "parents": [{"id": folder_id}], "createdDate": YEAR_AGO,
              "modifiedDate": YEAR_AGO},
        media_body=MediaFileUpload(str(path), mimetype="application/octet-stream"),
        supportsAllDrives=True).execute()["id"]


def old_sidecar_marked(emulator, tmp_path) -> tuple[Any, dict, str, str]:
    """An old run's autosave 2 (saved in tmp_path/old) came into Models/old sidecar first,
    as ``rclone copy -M`` sends it; a prune there marked the sidecar and kept it. The local
    folder, the pair's md5s (name -> [md5]), Models/old's id and the sidecar's."""
    old_src = tmp_path / "old"
    theirs = save(str(old_src), autosave(2), 0, T0 + 2, run=OLD_RUN, saved=T0 + 2)
    old_folder = emulator.add_folder(OLD)
    side = send_old(emulator, old_src / f"{autosave(2)}.json", old_folder)
    out = ok("prune", f"drive:{OLD}", "--keep-last", "1")
    assert plan_row(out, f"{autosave(2)}.json")[0] == "keep", out
    assert len(marks_of(emulator, side)) == 1
    return old_src, theirs, old_folder, side


def orphan_old_by_its_dates(emulator, tmp_path) -> str:
    """epoch_003.json on Drive without its checkpoint, its dates a year old. Returns its id."""
    src = tmp_path / "a"
    save(str(src), "epoch_003", 3, T0 + 3, run=RUN)
    ok("push", str(src), SPEC)
    emulator.store.delete(id_of(emulator, f"{FOLDER}/epoch_003.pt"))
    side = id_of(emulator, f"{FOLDER}/epoch_003.json")
    emulator.store.update(side, created=time.time() - 365 * DAY,
                          modified=time.time() - 365 * DAY)
    return side


def lone_then_newer(emulator, lone_src, lone_run: str, lone_days: float, newer_src,
                    newer_run: str, newer_days: float) -> tuple[dict, dict]:
    """Run ``lone_run``'s autosave 2 reached Drive alone ``lone_days`` ago (its sidecar
    delayed: kept aside as late.json beside ``lone_src``); run ``newer_run``'s verified
    autosave 3 ``newer_days`` ago. No pass has seen them. Both pairs' md5s (name -> [md5])."""
    lone = save(str(lone_src), autosave(2), 0, T0 + 2, run=lone_run,
                saved=time.time() - lone_days * DAY)
    (lone_src / f"{autosave(2)}.json").rename(lone_src.parent / "late.json")
    ok("push", str(lone_src), SPEC)
    held_since(emulator, id_of(emulator, f"{FOLDER}/{autosave(2)}.pt"),
               time.time() - lone_days * DAY, seen=False)
    newer = save(str(newer_src), autosave(3), 0, T0 + 3, run=newer_run,
                 saved=time.time() - newer_days * DAY)
    ok("push", str(newer_src), SPEC)
    for name in newer:
        held_since(emulator, id_of(emulator, f"{FOLDER}/{name}"),
                   time.time() - newer_days * DAY, seen=False)
    return lone, newer


def late_sidecar_sent(lone_src) -> None:
    """The lone autosave's late sidecar (:func:`lone_then_newer`) pushed, alone."""
    (lone_src.parent / "late.json").rename(lone_src / f"{autosave(2)}.json")
    (lone_src / f"{autosave(2)}.pt").unlink()
    ok("push", str(lone_src), SPEC)


def sidecar_whole_again_then_split(emulator, tmp_path,
                                   whole: Callable[[str], None] = lambda side: None) -> None:
    """An old run's autosave 2 comes in as ``rclone copy -M`` sends it, sidecar first: a
    prune marks the sidecar. Its checkpoint comes, a prune runs (then ``whole(side)``). A
    week on, the checkpoint is deleted by hand: the sidecar, an orphan again, waits a day
    from now; the checkpoint sent again, the pair is whole on Drive."""
    old_src = tmp_path / "old"
    theirs = save(str(old_src), autosave(2), 0, T0 + 2, run=OLD_RUN, saved=T0 + 2)
    logs = emulator.add_folder(FOLDER)
    side = send_old(emulator, old_src / f"{autosave(2)}.json", logs)
    ok("prune", SPEC, "--keep-last", "1")
    assert len(marks_of(emulator, side)) == 1
    ckpt = send_old(emulator, old_src / f"{autosave(2)}.pt", logs)
    emulator.clear_requests()
    ok("prune", SPEC, "--keep-last", "1")
    whole(side)
    a_day_passes(emulator, FOLDER, by=7 * DAY)
    emulator.store.delete(ckpt)
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = plan_row(out, f"{autosave(2)}.json")
    assert action == "keep" and why.endswith("; retired 24 h after"), out
    send_old(emulator, old_src / f"{autosave(2)}.pt", logs)
    ok("prune", SPEC, "--keep-last", "1")
    assert live_md5s(emulator, FOLDER) == theirs
