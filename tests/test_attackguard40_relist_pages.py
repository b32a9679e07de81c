"""A rerun's one listing (``drivestage/drive/relist.py``) in several pages, one of which
Drive answered without the folder's children (``Faults.drop_or_parents(after=)``: its
failure of an OR of parents hits a request, and each page is one): fidelity40 refused an
answer with the folder and none of its children, but an answer of two pages, the first
whole and the second without the children, was taken as the folder's whole listing."""
from __future__ import annotations

import json

import pytest

from tests._cli import run
from _archives import a_zip as _zip

pytestmark = pytest.mark.usefixtures("drive_env", "local_state")


def _pull(dest) -> tuple[int, dict, str]:
    code, out, err = run("pull", "drive:F", str(dest), "-x", "-q", "--json")
    return code, (json.loads(out) if code == 0 else {}), err


@pytest.mark.parametrize("keep", [0, None])
def test_a_rerun_whose_second_page_lost_the_children_still_pulls_every_file(
        emulator, tmp_path, keep):
    for i in range(5):
        emulator.add_file(f"F/s{i}.zip", _zip({f"ds/own{i}": b"o%d" % i}))
    assert _pull(tmp_path / "d")[0] == 0
    emulator.add_file("F/t.zip", _zip({"ds/t": b"tt"}))     # new on Drive since
    emulator.faults.short_pages(2)
    emulator.faults.drop_or_parents(times=None, keep=keep, after=1)
    code, again, err = _pull(tmp_path / "d")
    assert code == 0, err
    assert sorted(f["name"] for f in again["files"]) == \
        ["s0.zip", "s1.zip", "s2.zip", "s3.zip", "s4.zip", "t.zip"], again
    assert (tmp_path / "d/F/ds/t").read_bytes() == b"tt"
    for i in range(5):
        assert (tmp_path / f"d/F/ds/own{i}").read_bytes() == b"o%d" % i


def test_the_fault_lets_its_first_answers_through(emulator):
    emulator.faults.drop_or_parents(times=1, keep=None, after=2)
    assert emulator.faults.describe()["drop_or_parents"] == {"times": 1, "keep": None,
                                                            "after": 2}
    emulator.faults.clear()
    emulator.faults.apply({"kind": "drop_or_parents", "after": 1})
    assert emulator.faults.describe()["drop_or_parents"] == {"times": 1, "keep": 0, "after": 1}


def test_a_server_that_always_loses_a_parent_costs_the_resolve_once_per_rerun(
        emulator, tmp_path):
    """Every OR of parents answered without the children, page after page: the rerun asks
    its one listing once, then resolves and lists as a first pull does (queries of one
    parent, answered whole); never the combined query again, whatever the server says."""
    for i in range(3):
        emulator.add_file(f"F/s{i}.zip", _zip({f"ds/own{i}": b"o%d" % i}))
    assert _pull(tmp_path / "d")[0] == 0
    first = len(emulator.requests)
    assert _pull(tmp_path / "d")[0] == 0
    whole = [r.kind for r in emulator.requests[first:]]
    assert whole == ["files.list"]
    emulator.faults.short_pages(1)
    emulator.faults.drop_or_parents(times=None, keep=0)
    for _ in range(2):
        before = len(emulator.requests)
        code, again, err = _pull(tmp_path / "d")
        assert code == 0, err
        assert again["actions"] == {"cached": 3}, again
        sent = emulator.requests[before:]
        combined = [r for r in sent if ") or (" in (r.query.get("q") or "")]
        assert len(combined) == 1, [r.query for r in sent]
        # (its one listing, the resolve of F, F's listing in pages of one: 3 children)
        assert [r.kind for r in sent] == ["files.list"] * 5
