"""What the run-folder arbiter's tests (lease47_cas, lease48_if_match, lease49) share: a
trainer's RunLease as the trainer makes it, the folder's patches (the etag each named, the
status answered), a 0.1.x claim gone stale, and two trainers racing: one's acquire in a
thread of its own, its read of the folder held by the emulator until the other has gone
ahead (every wait is on the emulator's count of held answers, none on a clock)."""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Optional

DEST = "drive:runs/exp"


def lease(tmp_path, name: str, period: float = 3.0, dest: str = DEST):
    """A RunLease on ``dest`` with its local folder ``tmp_path/name`` (a token of its own:
    another machine's trainer)."""
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    return RunLease(DriveFolder(dest, str(tmp_path / name)), period_s=period)


def patches(emulator, folder: str, since: int = 0) -> list[tuple[str, int]]:
    """The folder's patches from request ``since`` on: (the If-Match each named, the status
    answered)."""
    out = []
    for r in emulator.requests[since:]:
        if r.method == "PATCH" and f"/files/{folder}" in r.path:
            named = {k.lower(): v for k, v in r.headers.items()}.get("if-match", "")
            out.append((named, r.status))
    return out


def stale_old_claim(emulator) -> str:
    """A claim file of a trainer of 0.1.x on another machine (no arbiter), silent an hour."""
    body = {"owner": "0ld0ld0ld0ld0ld0", "host": "old-machine", "pid": 4242,
            "machine": "0badf00d", "generation": 1, "renewals": 9, "written": 0}
    fid = emulator.add_file("runs/exp/trainer-lease-0ld0ld0ld0ld0ld0.json",
                            json.dumps(body).encode())
    emulator.store.update(fid, modified=time.time() - 3600)
    return fid


def arbiter(emulator) -> str:
    """The run folder's arbiter as Drive holds it ("" where none)."""
    folder = emulator.find("runs/exp")["id"]
    return next((p["value"] for p in emulator.properties_of(folder)
                 if p["key"] == "trainer-lease"), "")


def claims_on_drive(emulator) -> list[str]:
    """The claim files in the run folder, by name."""
    folder = emulator.find("runs/exp")["id"]
    with emulator.store.lock:
        return sorted(r["title"] for r in emulator.store.children(folder)
                      if r["title"].startswith("trainer-lease-") and not r["trashed"])


def refusing(proxy, folder: str) -> None:
    """Every patch of ``folder`` answered 412 by ``proxy`` (tests/_proxy.py), as Drive words
    it, the emulator never asked: a proxy that rewrites etags (attackint47)."""
    from _proxy import Reply

    refused = json.dumps({"error": {"code": 412, "message": "Precondition Failed", "errors": [
        {"domain": "global", "reason": "conditionNotMet", "message": "Precondition Failed",
         "locationType": "header", "location": "If-Match"}]}}).encode()
    proxy.on("PATCH", rf"/files/{folder}\?", lambda *_: Reply(
        412, {"Content-Type": "application/json", "Content-Length": str(len(refused))},
        [refused]), forward=False)


class Held:
    """``with Held(emulator, folder, a) as race:``: ``a.acquire()`` in a thread, its read of
    ``folder`` (the arbiter's ``files.get``) answered only at :meth:`go`, so another trainer
    reads the same etag meanwhile (``method`` and ``path``, a regex of path and query: another
    of a's requests held, the first that matches). On leaving: the hold let go, the thread joined, and ``a``
    released where it held."""

    def __init__(self, emulator, folder: str, a, method: str = "GET",
                 path: Optional[str] = None) -> None:
        self.emulator, self.a, self.out = emulator, a, {}   # out["a"]: "held", or raised
        self._thread = threading.Thread(target=self._take)
        emulator.faults.latency(60, method, path or rf"/files/{folder}\?.*fields=etag", times=1)

    def _take(self) -> None:
        try:
            self.a.acquire()
            self.out["a"] = "held"
        except BaseException as exc:   # (the test says what it expects)
            self.out["a"] = exc

    def __enter__(self) -> "Held":
        self._thread.start()
        came, _ = self.emulator.faults.wait_latencies(lambda n: n >= 1, timeout=30)
        assert came, "a never read the folder"
        return self

    def go(self) -> Any:
        """Let a's read be answered; what a's acquire came to ("held", or what it raised)."""
        self.emulator.faults.hurry()
        self._thread.join(30)
        assert not self._thread.is_alive()
        return self.out["a"]

    def __exit__(self, *exc) -> None:
        self.emulator.faults.hurry()
        self._thread.join(30)
        if self.out.get("a") == "held":
            self.a.release()


def checking(held: Any) -> "tuple[threading.Thread, list[BaseException]]":
    """``held.check()`` (a renewal) started in a thread: (the thread, what it raised)."""
    failed: list[BaseException] = []

    def renew() -> None:
        try:
            held.check()
        except Exception as exc:   # (what it raised is the test's)
            failed.append(exc)

    renewal = threading.Thread(target=renew)
    renewal.start()
    return renewal, failed


def renewal_held(emulator, held: Any, seconds: float = 60.0
                 ) -> "tuple[threading.Thread, list[BaseException]]":
    """A renewal of ``held`` (its claim's write due) in a thread of its own, Drive holding the
    claim's upload ``seconds``: returned once the emulator holds it (its count of held
    answers), as :func:`checking` returns."""
    emulator.faults.latency(seconds, path=rf"^/upload/drive/v2/files/{held._mine.id}", times=1)
    held._written_at = float("-inf")   # (due: the renewal writes the claim)
    renewal, failed = checking(held)
    assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]
    return renewal, failed
