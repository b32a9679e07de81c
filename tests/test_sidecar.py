"""The one sidecar convention: names, parsing (current and 0.1.0 forms), the newest-verified rule."""
from __future__ import annotations

import json
import re

from drivestage import sidecar
from drivestage.sidecar import Described, Sidecar


def test_name_for_uses_the_stem():
    assert sidecar.name_for("epoch_004.pt") == "epoch_004.json"
    assert sidecar.name_for("logs/best.pt") == "logs/best.json"
    assert sidecar.name_for("model") == "model.json"
    assert sidecar.name_for("x.json") == "x.json.json"


def test_pairs_prefers_the_current_form_and_reads_the_legacy_one():
    names = ["epoch_001.pt", "epoch_001.json", "epoch_001.pt.json", "epoch_002.pt",
             "epoch_002.pt.json", "epoch_003.pt", "results.csv"]
    assert sidecar.pairs(names) == {"epoch_001.pt": "epoch_001.json",
                                    "epoch_002.pt": "epoch_002.pt.json"}


def test_parse_round_trip_and_legacy_fields():
    side = Sidecar(epoch=7, iteration=4120, epoch_iteration=300, metrics={"map50": 0.5},
                   run="r1", md5="0" * 32, size=12)
    assert sidecar.parse(side.to_bytes()) == side
    old = json.dumps({"epoch": 4, "global_step": 40, "metrics": {"map50": 0.3, "bad": "x"},
                      "format_version": 1})
    got = sidecar.parse(old)
    assert got == Sidecar(epoch=4, iteration=40, metrics={"map50": 0.3})


def test_parse_never_raises_on_junk():
    for junk in (b"", b"{", b"[1]", b"\xff\xfe", json.dumps({"epoch": True, "md5": "zz"})):
        got = sidecar.parse(junk)
        assert got is None or (got.epoch is None and got.md5 is None)


def test_numbers_too_large_for_a_float_are_dropped_not_a_crash():
    """JSON integers have no bound: one past a float's range was an OverflowError out of
    parse (which never raises), so one hostile sidecar on Drive stopped a prune."""
    huge = "1" + "0" * 400
    got = sidecar.parse('{"epoch": 2, "metrics": {"map50": %s, "loss": 1.5}}' % huge)
    assert got is not None and got.epoch == 2 and dict(got.metrics) == {"loss": 1.5}


def test_nan_metrics_are_dropped():
    got = sidecar.parse('{"epoch": 1, "metrics": {"map50": NaN, "loss": 1.5}}')
    assert got is not None and dict(got.metrics) == {"loss": 1.5}


def _d(name, epoch, it=0, md5=None, side_md5=None, modified=0.0, run=None):
    return Described(name, Sidecar(epoch=epoch, epoch_iteration=it, md5=side_md5, run=run),
                     md5=md5, modified=modified)


def test_newest_orders_by_progress_then_pattern_then_mtime():
    pattern = re.compile(r"epoch_\d+")
    items = [_d("epoch_004.pt", 4, modified=5), _d("autosave.pt", 4, it=30, modified=1),
             _d("best.pt", 3, modified=9)]
    assert sidecar.newest(items, prefer=pattern).name == "autosave.pt"
    tie = [_d("last.pt", 5, modified=9), _d("epoch_005.pt", 5, modified=1)]
    assert sidecar.newest(tie, prefer=pattern).name == "epoch_005.pt"
    assert sidecar.newest(tie).name == "last.pt"


def test_a_sidecar_of_another_version_does_not_verify():
    a = "a" * 32
    items = [_d("best.pt", 9, md5="b" * 32, side_md5=a), _d("epoch_002.pt", 2, md5=a, side_md5=a)]
    assert sidecar.newest(items).name == "epoch_002.pt"


def test_run_filter_and_skip():
    items = [_d("epoch_050.pt", 50, run="old"), _d("epoch_002.pt", 2, run="new"),
             _d("epoch_001.pt", 1, run="new")]
    assert sidecar.newest(items, run="new").name == "epoch_002.pt"
    assert sidecar.newest(items, run="new", skip={"epoch_002.pt"}).name == "epoch_001.pt"
    assert sidecar.newest(items, run="none") is None


def test_write_is_atomic_and_readable(tmp_path):
    ckpt = tmp_path / "epoch_001.pt"
    ckpt.write_bytes(b"x")
    path = sidecar.write(str(ckpt), Sidecar(epoch=1, iteration=10))
    assert path == str(tmp_path / "epoch_001.json")
    assert sidecar.parse((tmp_path / "epoch_001.json").read_bytes()).iteration == 10
    assert [p.name for p in tmp_path.iterdir()] != []
    assert not list(tmp_path.glob(".*.tmp"))
