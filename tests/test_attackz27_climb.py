"""A push whose climb for the locks of the folders above it is refused (attackz27; held up).

The folders above a push's folder are read by id for their locks
(:func:`drivestage.drive.folders.lineage`). A folder above that this account may not read
(shared with it from inside someone else's Drive: 404 or 403 for the folder above), ends the
climb: the push goes on, holding the locks it could name, and sends every file once."""
from __future__ import annotations

import pytest

from drivestage.upload_tree import push

from test_push27_nested import _live_in
from test_push_safety import _md5, _no_duplicates, _run_tree


@pytest.mark.parametrize("reason", ["notFound", "insufficientFilePermissions"])
def test_a_push_whose_folder_above_cannot_be_read_goes_on(emulator, drive_env, local_state,
                                                          reason):
    emulator.add_folder("runs/exp1/tb/deep")
    runs, exp1 = emulator.find("runs")["id"], emulator.find("runs/exp1")["id"]
    files = _run_tree(local_state / "exp1")
    rule = emulator.faults.inject("GET", rf"/files/{runs}\b", reason=reason, times=None)
    result = push(str(local_state / "exp1"), "drive:runs/exp1", jobs=1)
    assert rule is not None
    assert len(result.uploaded) == len(files)
    assert _no_duplicates(emulator) == {}
    assert _live_in(emulator, exp1) == {k: _md5(v) for k, v in files.items() if "/" not in k}
    got = [r for r in emulator.requests if r.method == "GET" and f"/files/{runs}" in r.path]
    assert got, "the climb read the folder above"
