"""Drive's answer to a ``files.list`` that ORs two parents can hold one parent's items and
silently none of the other's (``Faults.drop_or_parents``; the reports are named in
``drivestage/emulator/split_or.py``): rclone's drive backend, backend/drive/drive.go,
``listRRunner``: "work around a bug in google drive where (A in parents) or (B in parents)
returns nothing sometimes. See #3114, #4289 and https://issuetracker.google.com/issues/149522397";
rclone issue 9810 and wiserain/rclone pull request 64: "Google Drive can return entries
for some parents in a grouped query such as `(A in parents) or (B in parents)`, while
silently returning no entries for other parents in the same group", ``incompleteSearch``
false. The emulator answered such a query whole; the rerun of a folder pull asks exactly
that (``drivestage/drive/relist.py``: the folder by its name in its parent, or its
children), and took the folder with none of its children for an empty folder.
"""
from __future__ import annotations

import json

import pytest

from tests._cli import run
from tests._drive_clients import drive_service
from _archives import a_zip as _zip

pytestmark = pytest.mark.usefixtures("drive_env", "local_state")


def _folder(emulator, n: int = 3) -> str:
    for i in range(n):
        emulator.add_file(f"F/s{i}.zip", _zip({"ds/x": b"x%d" % i, f"ds/own{i}": b"o%d" % i}))
    return emulator.find("F")["id"]


def _pull(emulator, dest) -> tuple[int, dict, str, list]:
    before = len(emulator.requests)
    code, out, err = run("pull", "drive:F", str(dest), "-x", "-q", "--json")
    return code, (json.loads(out) if code == 0 else {}), err, emulator.requests[before:]


def _titles(service, q: str) -> list[str]:
    return sorted(it["title"] for it in service.files().list(q=q).execute()["items"])


def test_the_emulator_leaves_out_every_parent_but_the_one_kept(emulator):
    a, b = emulator.add_folder("A"), emulator.add_folder("B")
    emulator.add_file("A/a.bin", b"a")
    emulator.add_file("B/b.bin", b"b")
    service = drive_service(emulator.url)
    q = f"('{a}' in parents) or ('{b}' in parents)"
    assert _titles(service, q) == ["a.bin", "b.bin"]
    emulator.faults.drop_or_parents(times=1)               # the first parent's items only
    answer = service.files().list(q=q).execute()
    assert [it["title"] for it in answer["items"]] == ["a.bin"]
    assert answer["incompleteSearch"] is False             # nothing tells the client
    assert _titles(service, q) == ["a.bin", "b.bin"]       # once
    emulator.faults.drop_or_parents(times=1, keep=None)    # "returns nothing sometimes"
    assert _titles(service, q) == []
    emulator.faults.drop_or_parents(times=None, keep=1)
    assert _titles(service, q) == ["b.bin"] == _titles(service, q)
    assert _titles(service, f"'{a}' in parents") == ["a.bin"]   # one parent: whole
    emulator.faults.clear()
    assert _titles(service, q) == ["a.bin", "b.bin"]


def test_the_fault_over_the_control_api(emulator):
    emulator.faults.apply({"kind": "drop_or_parents", "times": 2, "keep": None})
    assert emulator.faults.describe()["drop_or_parents"] == {"times": 2, "keep": None}
    emulator.faults.clear()
    assert emulator.faults.describe()["drop_or_parents"] is None


@pytest.mark.parametrize("keep", [0, 1, None])
def test_a_rerun_whose_listing_lost_a_parent_still_pulls_every_file(emulator, tmp_path, keep):
    _folder(emulator)
    assert _pull(emulator, tmp_path / "d")[0] == 0
    emulator.add_file("F/t.zip", _zip({"ds/t": b"tt"}))     # new on Drive since
    emulator.faults.drop_or_parents(times=1, keep=keep)
    code, again, err, sent = _pull(emulator, tmp_path / "d")
    assert code == 0, err
    assert again["actions"] == {"cached": 3, "download": 1}, again
    assert sorted(f["name"] for f in again["files"]) == ["s0.zip", "s1.zip", "s2.zip", "t.zip"]
    assert (tmp_path / "d/F/ds/t").read_bytes() == b"tt"
    # The one-request rerun stays for answers Drive gives whole.
    code, again, err, sent = _pull(emulator, tmp_path / "d")
    assert code == 0 and [r.kind for r in sent] == ["files.list"], err
