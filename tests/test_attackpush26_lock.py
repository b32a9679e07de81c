"""Two pushes into one Drive folder named two ways, one of them through a store rooted
elsewhere than My Drive: a shared drive by name (``drive:shared/Team/runs``) or "Shared with
me" (``drive:shared-with-me/Course/runs``), the other by id (``drive:id:<ID>``, what a sharing
link gives). The folder's own lock (attacky25) was keyed on the store's label too, so the two
named one folder with two locks, neither waited, and every new file was made twice."""
from __future__ import annotations

import pytest

from drivestage.upload_tree import push

from _at_once import live_in as _live_in, second_at_the_ids
from _proxy import Proxy
from test_push_safety import _md5, _no_duplicates, _run_tree


@pytest.mark.parametrize("where", ["shared", "shared-with-me"])
def test_a_push_by_id_waits_for_a_push_into_the_same_folder_by_its_shared_path(
        emulator, local_state, monkeypatch, where):
    if where == "shared":
        team = emulator.add_shared_drive("Team")
        folder_id = emulator.add_folder("runs", drive_id=team)
        spec = "drive:shared/Team/runs"
    else:
        course = emulator.add_folder("Course", owner="teacher@school.edu",
                                     shared_with_me="writer")
        folder_id = emulator.add_folder("Course/runs", owner="teacher@school.edu")
        assert emulator.find("Course/runs", owner="teacher@school.edu")["id"] == folder_id
        assert course
        spec = "drive:shared-with-me/Course/runs"
    src = local_state / "logs"
    files = _run_tree(src)
    with Proxy(emulator.url) as proxy:   # (both pushes go through it: one API root)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
        with second_at_the_ids(proxy, lambda: push(str(src), f"drive:id:{folder_id}", jobs=1)):
            push(str(src), spec, jobs=1)
    assert _no_duplicates(emulator) == {}
    top = {k: _md5(v) for k, v in files.items() if "/" not in k}
    assert _live_in(emulator, folder_id) == top
