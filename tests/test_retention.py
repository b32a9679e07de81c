"""Retention: exact kept/deleted sets for each policy, combinations and edge cases."""
from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivestage.errors import PolicyError
from drivestage.retention import Candidate, Decision, RetentionPolicy, format_plan, plan


def ckpts(epochs, size=100, metrics=None, fmt="epoch_{:03d}.pt"):
    """Checkpoints saved in epoch order, one second apart."""
    metrics = metrics or {}
    return [Candidate(fmt.format(e), size, 1000.0 + e, metrics.get(e, {})) for e in epochs]


def deleted(files, policy, **kw):
    return {d.name for d in plan(files, policy, **kw) if not d.keep}


def kept(files, policy, **kw):
    return {d.name for d in plan(files, policy, **kw) if d.keep}


# --- policy validation -------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, fragment", [
    ({"keep_last": 0}, "keep_last=0"),
    ({"keep_last": -2}, "keep_last=-2"),
    ({"keep_last": True}, "keep_last=True"),
    ({"keep_last": 1.5}, "keep_last=1.5"),
    ({"keep_best": 2}, "keep_best=2 needs a metric"),
    ({"keep_best": 0, "metric": "map50"}, "keep_best=0"),
    ({"keep_every": 0}, "keep_every=0"),
    ({"mode": "maximum"}, "mode='maximum'"),
    ({"max_bytes": 0}, "max_bytes=0"),
    ({"max_bytes": -5}, "max_bytes=-5"),
    ({"pattern": "epoch(("}, "pattern='epoch(('"),
    ({"keep_every": 2, "pattern": r"\.pt$"}, "has no (?P<epoch>...) group"),
    ({"keep_best": 1, "metric": "  "}, "metric='  '"),
])
def test_policy_validation_names_the_bad_value(kwargs, fragment):
    with pytest.raises(PolicyError) as err:
        RetentionPolicy(**kwargs)
    assert fragment in str(err.value)
    assert err.value.exit_code == 2


def test_from_options_parses_cli_strings():
    p = RetentionPolicy.from_options(keep_last="3", keep_best="1", metric="map50", mode="MAX",
                                     keep_every="4", max_bytes="10GB")
    assert p == RetentionPolicy(keep_last=3, keep_best=1, metric="map50", mode="max",
                                keep_every=4, max_bytes=10 * 10**9)
    with pytest.raises(PolicyError, match="keep_last='three'"):
        RetentionPolicy.from_options(keep_last="three")
    with pytest.raises(PolicyError, match="'10 parsecs'"):
        RetentionPolicy.from_options(max_bytes="10 parsecs")


# --- single rules -------------------------------------------------------------------------

def test_no_policy_deletes_nothing():
    files = ckpts(range(1, 10))
    result = plan(files, RetentionPolicy())
    assert all(d.keep for d in result)
    assert result.fits


def test_keep_last_sequence_of_saves():
    policy = RetentionPolicy(keep_last=3)
    files: list[Candidate] = []
    for epoch in range(1, 8):
        files.append(ckpts([epoch])[0])
        doomed = deleted(files, policy)
        files = [f for f in files if f.name not in doomed]
        assert {f.name for f in files} == {f"epoch_{e:03d}.pt" for e in range(max(1, epoch - 2), epoch + 1)}


def test_keep_last_orders_by_epoch_number_not_name_or_mtime():
    # epoch 10 sorts before 9 as text; mtimes are scrambled: the epoch decides.
    files = [Candidate("epoch9.pt", 1, 500.0), Candidate("epoch10.pt", 1, 100.0),
             Candidate("epoch8.pt", 1, 900.0)]
    assert kept(files, RetentionPolicy(keep_last=2)) == {"epoch9.pt", "epoch10.pt"}


def test_keep_last_by_mtime_when_pattern_has_no_epoch():
    files = [Candidate("a.pt", 1, 300.0), Candidate("b.pt", 1, 100.0), Candidate("c.pt", 1, 200.0),
             Candidate("notes.txt", 1, 50.0)]
    policy = RetentionPolicy(keep_last=1, pattern=r"\.pt$")
    assert deleted(files, policy) == {"b.pt", "c.pt"}


def test_keep_best_max_and_min():
    m = {1: {"map50": 0.30, "val_loss": 4.0}, 2: {"map50": 0.45, "val_loss": 3.0},
         3: {"map50": 0.41, "val_loss": 2.5}, 4: {"map50": 0.38, "val_loss": 3.5},
         5: {"map50": 0.20, "val_loss": 3.9}}
    files = ckpts(range(1, 6), metrics=m)
    best_map = RetentionPolicy(keep_best=2, metric="map50", mode="max")
    assert kept(files, best_map) == {"epoch_002.pt", "epoch_003.pt", "epoch_005.pt"}  # + newest
    best_loss = RetentionPolicy(keep_best=1, metric="val_loss", mode="min")
    assert kept(files, best_loss) == {"epoch_003.pt", "epoch_005.pt"}


def test_keep_best_tie_goes_to_newer():
    files = ckpts(range(1, 5), metrics={1: {"m": 0.5}, 2: {"m": 0.5}, 3: {"m": 0.5}, 4: {"m": 0.1}})
    assert kept(files, RetentionPolicy(keep_best=1, metric="m")) == {"epoch_003.pt", "epoch_004.pt"}


def test_keep_best_metric_from_name_pattern():
    # The Colab port's names: ep012-loss3.210-val_loss3.456.pth
    names = ["ep001-loss5.100-val_loss5.500.pth", "ep002-loss4.100-val_loss4.200.pth",
             "ep003-loss3.900-val_loss4.400.pth", "ep004-loss3.500-val_loss4.300.pth"]
    files = [Candidate(n, 10, float(i)) for i, n in enumerate(names)]
    policy = RetentionPolicy(keep_best=1, metric="val_loss", mode="min",
                             pattern=r"ep(?P<epoch>\d+)-loss[\d.]+-val_loss(?P<val_loss>[\d.]+)\.pth$")
    assert kept(files, policy) == {names[1], names[3]}


def test_sidecar_metric_wins_over_name_and_missing_metric_is_never_best():
    pat = r"epoch(?P<epoch>\d+)(-m(?P<m>[\d.]+))?"
    files = [Candidate("epoch1-m0.9.pt", 1, 1, {"m": 0.1}),   # sidecar says 0.1
             Candidate("epoch2-m0.5.pt", 1, 2),
             Candidate("epoch3-mX.pt", 1, 3),                  # no metric: pattern fails
             Candidate("epoch4-m0.2.pt", 1, 4, {"m": math.nan}),
             Candidate("epoch5-m0.3.pt", 1, 5)]
    policy = RetentionPolicy(keep_best=1, metric="m", pattern=pat)
    assert kept(files, policy) == {"epoch2-m0.5.pt", "epoch5-m0.3.pt"}


def test_keep_best_without_any_metric_keeps_only_newest():
    files = ckpts(range(1, 4))
    assert kept(files, RetentionPolicy(keep_best=2, metric="map50")) == {"epoch_003.pt"}


def test_keep_every():
    files = ckpts(range(1, 11))
    assert kept(files, RetentionPolicy(keep_every=4)) == {"epoch_004.pt", "epoch_008.pt", "epoch_010.pt"}


def test_epoch_from_sidecar_overrides_name():
    files = [Candidate("ckpt-a.pt", 1, 10, epoch=3), Candidate("ckpt-b.pt", 1, 20, epoch=1),
             Candidate("ckpt-c.pt", 1, 30, epoch=2)]
    policy = RetentionPolicy(keep_last=1, pattern=r"ckpt-(?P<epoch>\d+)?")
    assert kept(files, policy) == {"ckpt-a.pt"}


# --- combinations, protection, safety -----------------------------------------------------

def test_union_of_rules():
    m = {2: {"map50": 0.9}}
    files = ckpts(range(1, 13), metrics=m)
    policy = RetentionPolicy(keep_last=2, keep_best=1, metric="map50", keep_every=5)
    assert kept(files, policy) == {"epoch_002.pt", "epoch_005.pt", "epoch_010.pt",
                                   "epoch_011.pt", "epoch_012.pt"}


def test_protect_by_name_and_id():
    files = [Candidate(f"epoch_{e}.pt", 1, e, id=f"id{e}") for e in range(1, 6)]
    policy = RetentionPolicy(keep_last=1)
    assert kept(files, policy, protect={"epoch_2.pt", "id3"}) == {"epoch_2.pt", "epoch_3.pt",
                                                                  "epoch_5.pt"}


def test_non_matching_and_outside_names_never_touched():
    files = ckpts(range(1, 4)) + [Candidate("best.pt", 9, 1), Candidate("events.out.tfevents", 9, 1),
                                  Candidate("../epoch_001.pt", 9, 1), Candidate("sub/epoch_002.pt", 9, 1),
                                  Candidate("..", 0, 0), Candidate("orphan_epoch_9.pt.json", 1, 1)]
    result = plan(files, RetentionPolicy(keep_last=1))
    assert {d.name for d in result if not d.keep} == {"epoch_001.pt", "epoch_002.pt"}
    reasons = {d.name: d.reason for d in result}
    assert reasons["best.pt"].startswith("not a checkpoint")
    assert reasons["sub/epoch_002.pt"] == "outside the managed folder"
    assert reasons["orphan_epoch_9.pt.json"].startswith("not a checkpoint")


def test_sidecars_follow_their_checkpoint():
    files = ckpts(range(1, 5)) + [Candidate(f"epoch_{e:03d}.pt.json", 7, 1000.0 + e)
                                  for e in (1, 3, 4)]
    result = plan(files, RetentionPolicy(keep_last=2))
    assert result.deleted_names == {"epoch_001.pt", "epoch_001.pt.json", "epoch_002.pt"}
    names = [d.name for d in result]
    assert names.index("epoch_001.pt.json") == names.index("epoch_001.pt") + 1


def test_stem_sidecars_of_the_trainer_follow_too():
    files = ckpts(range(1, 4)) + [Candidate(f"epoch_{e:03d}.json", 3, 1000.0 + e) for e in (1, 2, 3)] \
        + [Candidate("best.json", 3, 0)]
    result = plan(files, RetentionPolicy(keep_last=1))
    assert result.deleted_names == {"epoch_001.pt", "epoch_001.json", "epoch_002.pt", "epoch_002.json"}
    assert [d.name for d in result][:4] == ["epoch_001.pt", "epoch_001.json", "epoch_002.pt", "epoch_002.json"]
    assert {d.name: d.reason for d in result}["best.json"].startswith("not a checkpoint")


def test_budget_counts_a_sidecar_once_and_frees_it_with_its_checkpoint():
    files = ckpts(range(1, 4), size=100) + [Candidate("epoch_001.json", 50, 0), Candidate("epoch_001.pt.json", 50, 0)]
    result = plan(files, RetentionPolicy(max_bytes=300))
    assert result.deleted_names == {"epoch_001.pt", "epoch_001.json", "epoch_001.pt.json"}
    assert result.kept_bytes == 200


def test_duplicate_names_are_told_apart_by_id():
    files = [Candidate("epoch_1.pt", 1, 10, id="a"), Candidate("epoch_1.pt", 1, 20, id="b"),
             Candidate("epoch_2.pt", 1, 30, id="c")]
    result = plan(files, RetentionPolicy(keep_last=2))
    assert [(d.id, d.keep) for d in result] == [("a", False), ("b", True), ("c", True)]


def test_unparsable_epoch_falls_back_to_mtime_for_all():
    pat = r"epoch[_-]?(?P<epoch>\d+)?"
    files = [Candidate("epoch_5.pt", 1, 100), Candidate("epoch_x.pt", 1, 300),
             Candidate("epoch_9.pt", 1, 200)]
    assert kept(files, RetentionPolicy(keep_last=1, pattern=pat)) == {"epoch_x.pt"}


# --- budget -------------------------------------------------------------------------------

def test_budget_deletes_oldest_first_until_it_fits():
    files = ckpts(range(1, 6), size=100)
    result = plan(files, RetentionPolicy(max_bytes=350), incoming_bytes=100)
    assert result.deleted_names == {"epoch_001.pt", "epoch_002.pt", "epoch_003.pt"}
    assert result.fits and result.kept_bytes == 200 and result.shortfall == 0


def test_budget_counts_sidecars_and_skips_pinned():
    m = {1: {"map50": 0.9}}
    files = ckpts(range(1, 5), size=100, metrics=m) + [Candidate("epoch_002.pt.json", 50, 0)]
    policy = RetentionPolicy(keep_last=3, keep_best=1, metric="map50", max_bytes=300)
    result = plan(files, policy, protect={"epoch_003.pt"})
    # 1 best, 3 protected, 4 newest: only 2 (+ its sidecar) can go for the budget.
    assert result.deleted_names == {"epoch_002.pt", "epoch_002.pt.json"}
    assert result.fits and result.kept_bytes == 300


def test_budget_that_cannot_fit_plans_no_budget_deletions():
    files = ckpts(range(1, 5), size=100)
    policy = RetentionPolicy(keep_last=3, max_bytes=250)
    result = plan(files, policy, incoming_bytes=200)
    assert not result.fits
    assert result.deleted_names == {"epoch_001.pt"}       # the keep_last rule only
    assert result.kept_bytes == 300 and result.shortfall == 250
    text = format_plan(result)
    assert "cannot hold" in text and "short by 250 B" in text


def test_budget_within_limit_deletes_nothing():
    files = ckpts(range(1, 4), size=100)
    assert deleted(files, RetentionPolicy(max_bytes=300)) == set()


# --- kinds and autosaves ------------------------------------------------------------------

def test_every_decision_says_its_kind():
    files = ckpts([1, 2]) + [Candidate("epoch_001.json", 1, 1), Candidate("autosave_00000120.pt", 5, 3),
                             Candidate("autosave_00000120.json", 1, 3), Candidate("best.pt", 9, 1),
                             Candidate("orphan.json", 1, 1), Candidate("../epoch_009.pt", 1, 1)]
    kinds = {d.name: d.kind for d in plan(files, RetentionPolicy(keep_last=1))}
    assert kinds == {"epoch_001.pt": "checkpoint", "epoch_002.pt": "checkpoint",
                     "epoch_001.json": "sidecar", "autosave_00000120.pt": "autosave",
                     "autosave_00000120.json": "sidecar", "best.pt": "other",
                     "orphan.json": "other", "../epoch_009.pt": "other"}


def autos(steps, verified=(), size=10):
    """Autosaves written at these iterations (the trainer's names), the ``verified`` ones on
    the store with a sidecar that vouches for them."""
    out = []
    for i in steps:
        out.append(Candidate(f"autosave_{i:08d}.pt", size, 5000.0 + i, verified=i in verified))
        if i in verified:
            out.append(Candidate(f"autosave_{i:08d}.json", 1, 5000.0 + i))
    return out


def test_autosaves_keep_the_newest_verified_and_what_is_in_flight():
    files = ckpts([1, 2, 3]) + autos([100, 200, 300, 400], verified={100, 200, 300})
    result = plan(files, RetentionPolicy(keep_last=1))
    assert result.deleted_names == {"epoch_001.pt", "epoch_002.pt", "autosave_00000100.pt",
                                    "autosave_00000100.json", "autosave_00000200.pt",
                                    "autosave_00000200.json"}
    why = {d.name: d.reason for d in result}
    assert why["autosave_00000300.pt"] == "newest verified autosave"
    assert why["autosave_00000400.pt"] == "autosave newer than the newest verified one"
    assert why["autosave_00000100.pt"] == ("an older autosave (autosave_00000300.pt is newer and "
                                           "verified)")
    assert [d.name for d in result][3:] == ["autosave_00000100.pt", "autosave_00000100.json",
                                            "autosave_00000200.pt", "autosave_00000200.json",
                                            "autosave_00000300.pt", "autosave_00000300.json",
                                            "autosave_00000400.pt"]


def test_no_verified_autosave_deletes_none_and_order_is_by_the_number():
    assert deleted(autos([5, 40, 300]), RetentionPolicy(keep_last=1)) == set()
    # 9 < 10 by number, not by name or mtime
    files = [Candidate("autosave_10.pt", 1, 1.0, verified=True), Candidate("autosave_9.pt", 1, 2.0)]
    assert deleted(files, RetentionPolicy(keep_last=1)) == {"autosave_9.pt"}


def test_autosaves_never_count_against_keep_rules_and_protect_wins():
    files = ckpts([1, 2, 3]) + autos([1, 2], verified={1, 2})
    result = plan(files, RetentionPolicy(keep_last=2), protect={"autosave_00000001.pt"})
    assert result.deleted_names == {"epoch_001.pt"}


def test_autosaves_count_toward_the_budget_and_are_never_its_victims():
    files = ckpts([1, 2, 3], size=100) + autos([7, 8], verified={7, 8}, size=100)
    result = plan(files, RetentionPolicy(max_bytes=350))
    # 300 of checkpoints + 100 + 1 of the kept autosave: the oldest checkpoint goes
    assert result.deleted_names == {"epoch_001.pt", "autosave_00000007.pt",
                                    "autosave_00000007.json"}
    assert result.fits and result.kept_bytes == 301
    tight = plan(autos([7, 8, 9], verified={8}, size=100), RetentionPolicy(max_bytes=150))
    assert not tight.fits and tight.deleted_names == {"autosave_00000007.pt"}


def test_autosave_pattern_is_validated_and_configurable():
    with pytest.raises(PolicyError, match=re.escape("autosave_pattern='(('")):
        RetentionPolicy(autosave_pattern="((")
    policy = RetentionPolicy(keep_last=1, autosave_pattern=r"^timed-")
    files = ckpts([1, 2]) + [Candidate("timed-1.pt", 1, 1, verified=True),
                             Candidate("timed-2.pt", 1, 2, verified=True)]
    assert deleted(files, policy) == {"epoch_001.pt", "timed-1.pt"}


# --- the table ---------------------------------------------------------------

def test_format_plan_table():
    files = ckpts([1, 2], size=2048)
    text = format_plan(plan(files, RetentionPolicy(keep_last=1)))
    lines = text.splitlines()
    assert lines[0].split() == ["ACTION", "SIZE", "NAME", "REASON"]
    assert lines[1].startswith("delete") and "epoch_001.pt" in lines[1]
    assert lines[2].startswith("keep") and "newest, last 1" in lines[2]
    assert lines[-1] == "1 to delete (2.0 KiB), 1 kept"
    assert format_plan([]) .startswith("Nothing to prune")
    assert format_plan([Decision("x", True, "why", 1)]).splitlines()[-1] == "0 to delete (0 B), 1 kept"


# --- properties ---------------------------------------------------------------------------

_names = st.one_of(
    st.integers(0, 30).map(lambda e: f"epoch_{e:03d}.pt"),
    st.integers(0, 30).map(lambda e: f"epoch_{e:03d}.pt.json"),
    st.integers(0, 30).map(lambda e: f"epoch_{e:03d}.json"),
    st.sampled_from(["best.pt", "last.pt", "log.txt", "../epoch_001.pt", "a/epoch_002.pt"]),
    st.integers(0, 30).map(lambda i: f"autosave_{i:08d}.pt"),
    st.integers(0, 30).map(lambda i: f"autosave_{i:08d}.json"),
)
_candidates = st.lists(
    st.builds(Candidate, name=_names, size=st.integers(0, 1000), modified=st.floats(0, 1e6),
              metrics=st.dictionaries(st.just("m"), st.floats(-1, 1) | st.just(math.nan), max_size=1),
              verified=st.booleans()),
    max_size=25)
_policies = st.builds(
    RetentionPolicy,
    keep_last=st.none() | st.integers(1, 5), keep_best=st.none(),
    keep_every=st.none() | st.integers(1, 6), max_bytes=st.none() | st.integers(1, 5000),
) | st.builds(RetentionPolicy, keep_best=st.integers(1, 3), metric=st.just("m"),
              mode=st.sampled_from(["min", "max"]), keep_last=st.none() | st.integers(1, 3))


@settings(max_examples=150, deadline=None)
@given(files=_candidates, policy=_policies, incoming=st.integers(0, 3000),
       protect=st.sets(_names, max_size=3))
def test_plan_properties(files, policy, incoming, protect):
    result = plan(files, policy, protect=protect, incoming_bytes=incoming)
    again = plan(files, policy, protect=protect, incoming_bytes=incoming)
    assert result == again                                      # pure and deterministic
    assert sorted(d.name for d in result) == sorted(f.name for f in files)  # one decision each
    gone = {d.name for d in result if not d.keep}
    managed = [f for f in files if "/" not in f.name and not f.name.endswith(".json")
               and f.name.startswith("epoch_") and f.name != ".."]
    if managed:
        newest = max(managed, key=lambda f: (int(f.name[6:9]), f.modified))
        assert any(d.keep for d in result if d.name == newest.name)  # the newest survives
    for name in gone:                                           # only checkpoints and their sidecars
        assert name.startswith(("epoch_", "autosave_")) and "/" not in name
        if name.endswith(".json"):                              # a sidecar goes with its checkpoint(s)
            stem = name[:-5]
            owners = [f.name for f in files if not f.name.endswith(".json")
                      and (f.name == stem or f.name.rsplit(".", 1)[0] == stem)]
            assert owners
            assert not any(d.keep for d in result if d.name in owners)
    assert not (gone & protect)                                 # protected names survive
    if not policy.active:
        assert not gone
    kinds = {d.name: d.kind for d in result}
    assert all(kinds[n] in ("checkpoint", "autosave", "sidecar") for n in gone)
    # Autosaves: the newest verified one and every newer one stay; only older ones go.
    saves = [f for f in files if f.name.startswith("autosave_") and f.name.endswith(".pt")]
    newest = max((int(f.name[9:17]) for f in saves if f.verified), default=None)
    for f in saves:
        number = int(f.name[9:17])
        if f.name in gone:          # an autosave goes only when a newer one is verified
            assert newest is not None and number <= newest
        if newest is not None and number > newest:
            assert f.name not in gone
    if not policy.max_bytes:                                    # keep rules ignore autosaves
        without = [f for f in files if not f.name.startswith("autosave_")]
        alone = {d.name: d.keep for d in plan(without, policy, protect=protect)
                 if d.kind == "checkpoint"}
        assert alone == {d.name: d.keep for d in result if d.kind == "checkpoint"}


def test_the_newest_verified_checkpoint_stays_until_a_newer_one_is_verified():
    files = [Candidate(f"epoch_{e:03d}.pt", 100, 1000.0 + e, {}, e, f"id{e}", verified=e < 5)
             for e in range(1, 6)]   # epoch 5: its sidecar is not written yet
    assert kept(files, RetentionPolicy(keep_last=1)) == {"epoch_004.pt", "epoch_005.pt"}
    files[-1] = Candidate("epoch_005.pt", 100, 1005.0, {}, 5, "id5", verified=True)
    assert kept(files, RetentionPolicy(keep_last=1)) == {"epoch_005.pt"}
