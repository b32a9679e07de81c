"""What a push's messages name when it sends a private copy of a file, by attacksync33."""
from __future__ import annotations

import json
import os

from _cli import run
from _drive_state import live_md5s
from _liar import liar_env, one_error_line  # noqa: F401  (fixtures)
from _proxy import Reply
from drivestage.sizes import format_size
from test_attackds29_run_folders import _save


def _full_at(nth: int):
    """The ``nth`` upload's start answered as Drive answers a full quota (the quota shrank
    since the push asked it: another upload of the account, a shared drive's owner)."""
    seen: list[int] = []

    def mutate(status, headers, body):
        seen.append(status)
        if len(seen) != nth:
            return Reply(status, headers, [body])
        data = json.dumps({"error": {"code": 403, "message": "The user's Drive storage quota "
                                     "has been exceeded.", "errors": [{
                                         "domain": "usageLimits", "reason": "storageQuotaExceeded",
                                         "message": "The user's Drive storage quota has been "
                                                    "exceeded."}]}}).encode()
        return Reply(403, {"Content-Type": "application/json",
                           "Content-Length": str(len(data))}, [data])
    return mutate


def test_a_sidecar_refused_for_the_quota_is_named_by_its_own_path(emulator, proxy, liar_env,
                                                                  tmp_path):
    """``push exp1 drive:runs/exp1 --keep-last 1``: the checkpoint went, then Drive's quota
    refused its sidecar. The line named the private copy the push sends a sidecar from
    (``/tmp/.drivestage-sidecar-4711-x8k2.json -> epoch_002.json``), a file the user never
    made and that is gone once the push ends. It names the sidecar now. The verified pair
    already on Drive stays."""
    run_dir = tmp_path / "exp1"
    run_dir.mkdir()
    _save(str(run_dir), 1)
    code, _, err = run("push", str(run_dir), "drive:runs/exp1", "--keep-last", "1")
    assert code == 0, err
    for name in ("epoch_001.pt", "epoch_001.json"):
        os.remove(run_dir / name)
    _save(str(run_dir), 2)
    side = run_dir / "epoch_002.json"
    proxy.on("POST", r"uploadType=resumable", _full_at(2))

    code, _, err = run("push", str(run_dir), "drive:runs/exp1", "--keep-last", "1",
                       "--jobs", "1")

    assert one_error_line(code, err) == (
        f"Error: Not enough Drive storage for {side} -> epoch_002.json: needed "
        f"{format_size(side.stat().st_size)}, in trash 0 B. Free space on Drive, or prune "
        "with a policy (--keep-last/--max-bytes).")
    assert set(live_md5s(emulator, "runs/exp1")) == {"epoch_001.pt", "epoch_001.json",
                                                     "epoch_002.pt"}
