"""pushlefts48 (2): a first-seen mark forged old by another editor of the folder
(:mod:`drivestage.first_seen`: a PUBLIC property, any editor may write one, the file's own
tag and place and all). Drive gives no time a client cannot set at a file's creation
(``createdDate``: rclone's "btime … only writable on fresh uploads"; ``modifiedDate`` and
with it ``modifiedByMeDate``: ``setModifiedDate``), so no mark can be bounded by one. What
holds instead: ``createdDate`` cannot be moved once the file exists, and a file is retired
by age only when its dates *and* its mark are old. So a checkpoint sent by a client that
lets Drive stamp its dates (drivestage, the trainer) is spared its day whatever mark is
written on it, its modifiedDate moved back too. (A file sent with old dates, rclone ``-M``,
has none but the mark to go by: that one a forged mark retires at once, as documented.)

Found meanwhile: the spare of a checkpoint listed without a sidecar (its sidecar on its way,
retain47) judged "written after the newest verified" by modifiedDate alone: dated back, or
the verified one dated ahead, and the next ``push --delete`` removed it at once, no mark
asked. The real CLI and stack against the emulator; the editor's write is one files.patch
through the real googleapiclient, as another tool sends it."""
from __future__ import annotations

import os
import time

import pytest

from _checkpoints import md5
from _cli import run
from _drive_state import held_since, live_md5s, mark_value
from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect
from test_pushgap47_lone_age import _pushed as pushed_now

DAY = 24 * 3600.0


def _rfc3339(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(at))


def _pushed(emulator, tmp_path):
    """SRC with the epoch_004 pair, pushed three days ago: Drive's newest verified."""
    src, pair = pushed_now(tmp_path)
    for name in pair:
        held_since(emulator, emulator.find(f"runs/a/{name}")["id"], time.time() - 3 * DAY)
    return src, pair


def _patch(emulator, file_id: str, body: dict) -> None:
    """Another editor's files.patch of ``file_id`` (its dates as given: setModifiedDate)."""
    service = connect(api_root=emulator.url, token="test-token").service
    service.files().patch(fileId=file_id, setModifiedDate=True, supportsAllDrives=True,
                          body=body).execute()


@pytest.mark.parametrize("forged", [False, True], ids=["dated-back", "dated-back-and-marked"])
def test_a_lone_checkpoint_drive_dated_now_is_spared_whatever_its_date_and_mark_say(
        emulator, env, tmp_path, forged):
    """Another machine's ``epoch_005.pt``, its sidecar on its way (Drive stamped its dates
    now), then dated a week back by an editor (``setModifiedDate``; ``forged``: with a
    week-old mark of this very file, and a createdDate Drive does not move). Before: this
    machine's ``push --delete`` removed it at once, as "written before" the verified
    ``epoch_004`` (by its modifiedDate alone; the mark was never asked). Now it stays: by
    the later of its dates it came after, and the store has not held it a day."""
    src, pair = _pushed(emulator, tmp_path)
    five = os.urandom(3000)
    lone = emulator.add_file("runs/a/epoch_005.pt", five)
    created = emulator.store.get(lone)["created"]
    week = time.time() - 7 * DAY
    body: dict = {"modifiedDate": _rfc3339(week)}
    if forged:
        body.update(createdDate=_rfc3339(week), properties=[{
            "key": "drivestage-seen", "visibility": "PUBLIC",
            "value": mark_value(emulator, lone, week, week)}])
    _patch(emulator, lone, body)
    rec = emulator.store.get(lone)
    assert rec["modified"] < time.time() - 6 * DAY   # (moved back, as Drive lets it)
    assert rec["created"] == created                 # (never moved once the file exists)
    code, _, err = run("-v", "push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {**pair, "epoch_005.pt": [md5(five)]}, err


def test_a_verified_checkpoint_dated_a_year_ahead_spares_the_lone_one_after_it(
        emulator, env, tmp_path):
    """The verified ``epoch_004.pt`` dated a year ahead (a clock ahead, or set so): every
    checkpoint listed without a sidecar was "written before" it, and ``push --delete``
    removed another machine's ``epoch_005.pt`` sent a moment ago. Now a date that far ahead
    of Drive's clock dates nothing (its createdDate does): that one stays."""
    src, pair = _pushed(emulator, tmp_path)
    _patch(emulator, emulator.find("runs/a/epoch_004.pt")["id"],
           {"modifiedDate": _rfc3339(time.time() + 365 * DAY)})
    five = os.urandom(3000)
    emulator.add_file("runs/a/epoch_005.pt", five)
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {**pair, "epoch_005.pt": [md5(five)]}, err
