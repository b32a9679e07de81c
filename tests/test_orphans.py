"""The orphan-sidecar rule as a pure function (drivestage.orphans); the attacks through the
real stack are in test_attack_orphans.py."""
from __future__ import annotations

import dataclasses

import pytest

from drivestage import first_seen, orphans
from drivestage.retention import Candidate, RetentionPolicy, plan
from drivestage.sidecar import Described, Sidecar
from drivestage.store import RemoteEntry

POLICY = RetentionPolicy(keep_last=1)


@pytest.mark.parametrize("name, checkpoint", [
    ("epoch_003.json", "epoch_003.pt"), ("epoch_003.pt.json", "epoch_003.pt"),
    ("autosave_00000100.json", "autosave_00000100.pt"), ("config.json", None),
    ("results.json", None), ("best.json", None), ("last.json", None),
    ("epoch_003.pt", None), ("../epoch_003.json", None), ("loss_epoch_003.png.json", None)])
def test_the_checkpoint_a_json_is_the_sidecar_of(name, checkpoint):
    assert orphans.checkpoint_name(name, POLICY) == checkpoint


def _orphan(epoch: int, modified: float, run="r", saved=None) -> orphans.Orphan:
    entry = RemoteEntry(id="j", name=f"epoch_{epoch:03d}.json", is_dir=False, size=100,
                        md5="a" * 32, modified=modified)
    return orphans.Orphan(entry, f"epoch_{epoch:03d}.pt",
                          Sidecar(epoch=epoch, run=run, md5="b" * 32, size=10, saved=saved))


def _retire(orphan: orphans.Orphan, newer_saved=None, policy=POLICY):
    files = [Candidate("epoch_004.pt", 10, 200.0, {}, 4, "c4", True, "r", newer_saved),
             Candidate("epoch_004.json", 100, 201.0, id="s4"),
             Candidate(orphan.entry.name, 100, orphan.entry.modified, id="j")]
    described = [Described("epoch_004.pt", Sidecar(epoch=4, run="r", md5="c" * 32,
                                                    saved=newer_saved), "c" * 32, 200.0)]
    decided = plan(files, policy)
    # A clock minutes on: none of these orphans is old (see the tests of age below).
    out = orphans.retire(decided, files, described, [orphan], policy, now=1000.0)
    # Nothing but the orphan's own decision ever changes.
    assert [d for d in out if d.id != "j"] == [d for d in decided if d.id != "j"]
    return next(d for d in out if d.id == "j")


def test_a_superseded_orphan_is_retired_with_its_md5_for_the_recheck():
    d = _retire(_orphan(3, 100.0))
    assert (d.keep, d.kind, d.orphan_md5) == (False, "sidecar", "a" * 32)


@pytest.mark.parametrize("orphan, newer_saved, policy", [
    (_orphan(3, 100.0, run="other"), None, POLICY),   # another run: its only record
    (_orphan(5, 100.0), None, POLICY),                # further on: its checkpoint is newest
    (_orphan(3, 300.0), None, POLICY),                # arrived after epoch 4 did
    (_orphan(3, 100.0, saved=50.0), None, POLICY),    # epoch 4 says no save time
    (_orphan(3, 100.0, saved=50.0), 40.0, POLICY),    # epoch 4 saved before it
    (_orphan(3, 100.0), None, RetentionPolicy(keep_last=2)),  # its checkpoint would stay
    (_orphan(3, 100.0), None, RetentionPolicy()),     # no policy: nothing is deleted
])
def test_an_orphan_that_may_be_needed_is_kept(orphan, newer_saved, policy):
    d = _retire(orphan, newer_saved, policy)
    assert d.keep and d.kind == "other" and d.orphan_md5 is None


def test_an_orphan_saved_before_its_superseder_is_retired():
    assert not _retire(_orphan(3, 100.0, saved=50.0), 60.0).keep


# ------------------------------------------------------------ Drive's arrival times, and age

NOW = 1_800_000_000.0


def _at(orphan: orphans.Orphan, created: float, modified: float) -> orphans.Orphan:
    return orphans.Orphan(dataclasses.replace(orphan.entry, created=created, modified=modified),
                          orphan.checkpoint, orphan.sidecar)


def test_an_orphan_whose_uploader_set_its_modified_time_back_is_not_superseded():
    """Drive received it (createdDate 250) after epoch 4 (200); its uploader kept the file's
    mtime (modifiedDate 100): it may be the first half of an upload, so it stays."""
    d = _retire(_at(_orphan(3, 100.0), created=250.0, modified=100.0))
    assert d.keep and d.orphan_md5 is None


def _on_arrival(entry: RemoteEntry) -> first_seen.Mark:
    """The first-seen mark of a file first seen as it arrived."""
    return first_seen.Mark(orphans.arrived(entry), orphans.arrived(entry))


def _alone(orphan: orphans.Orphan, now: float, protect=(), policy=POLICY):
    """``orphan`` retired or not at ``now`` (a fake clock), with no other checkpoint."""
    files = [Candidate(orphan.entry.name, 100, orphan.entry.modified, id="j")]
    decided = plan(files, policy)
    out = orphans.retire(decided, files, [], [orphan], policy, protect=protect, now=now,
                         seen=_on_arrival)
    return next(d for d in out if d.id == "j")


@pytest.mark.parametrize("created, modified, retired", [
    (NOW - orphans.MIN_AGE, NOW - orphans.MIN_AGE, True),
    (NOW - orphans.MIN_AGE + 1, NOW - orphans.MIN_AGE + 1, False),
    (NOW - 3 * orphans.MIN_AGE, NOW - 60, False),      # changed in place a minute ago
    (NOW - 60, NOW - 3 * orphans.MIN_AGE, False),      # arrived a minute ago, an old mtime
    (0.0, NOW - 2 * orphans.MIN_AGE, False),           # a directory: mtimes, the writer's
    (NOW + 3600, NOW + 3600, False),                   # this machine's clock is behind
])
def test_an_orphan_nothing_supersedes_goes_once_the_store_held_it_min_age(created, modified,
                                                                          retired):
    d = _alone(_at(_orphan(3, 0.0), created, modified), NOW)
    assert (not d.keep, d.orphan_md5 is not None) == (retired, retired)
    if retired:
        assert d.reason.startswith("orphan sidecar: epoch_003.pt is not here, and this sidecar "
                                   "reached the store ")


@pytest.mark.parametrize("protect", [["epoch_003.pt"], ["epoch_003.json"], ["j"]])
def test_an_old_orphan_protected_by_name_or_id_stays(protect):
    d = _alone(_at(_orphan(3, 0.0), NOW - 2 * orphans.MIN_AGE, NOW - 2 * orphans.MIN_AGE), NOW,
               protect=protect)
    assert d.keep


def test_no_policy_keeps_an_old_orphan():
    d = _alone(_at(_orphan(3, 0.0), 1.0, 1.0), NOW, policy=RetentionPolicy())
    assert d.keep
