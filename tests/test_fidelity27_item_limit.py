"""fidelity27: a push by an account that has created as many items as Drive allows.

Drive's API release notes (January 2024): "Each user can have up to 500 million items that
were created by that account"; beyond it every create is refused with 403
``activeItemCreationLimitExceeded`` ("Resolve errors" guide). No upload of the account can
succeed, like with a full quota, yet a push tried every file in turn: a log folder of 10,000
files cost 10,000 refused requests (0.1-0.3 s each on Drive) before it said so.
"""
from __future__ import annotations

import _cli
from _envs import env  # noqa: F401  (a fixture)


def test_a_push_stops_uploading_at_the_item_creation_limit(emulator, env, tmp_path):
    emulator.add_folder("runs")
    src = tmp_path / "logs"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}.txt").write_bytes(b"x" * 100)
    emulator.set_item_creation_limit(1)          # the folder
    code, _, err = _cli.run("push", "-j", "1", str(src), "drive:runs")
    assert code == 1
    assert "this account has created as many items as Drive allows" in \
        err.strip().splitlines()[-1]
    starts = [r for r in emulator.requests if r.method == "POST" and "/upload/" in r.path]
    assert [r.status for r in starts] == [403]   # one refusal, not one per file
    assert [f["title"] for f in emulator.files() if f["title"].startswith("f")] == []
    # Room again (items deleted for good): the next push sends everything.
    emulator.set_item_creation_limit(None)
    code, _, err = _cli.run("push", str(src), "drive:runs")
    assert code == 0, err
    assert sorted(f["title"] for f in emulator.files() if f["title"].startswith("f")) == \
        [f"f{i}.txt" for i in range(6)]
