"""lefts44b: a mirror's claim on DEST (drivestage.mirror_claim) is advisory, but its thread was
started on the push thread: where the process could start no thread ("can't start new
thread", a RuntimeError), that failed the push period, and every one after it. The push
now goes on; one warning line says dedupe will not see this mirror, and nothing is claimed.
The claim thread's start fails for real (the interpreter's own RuntimeError at its start);
every other thread starts. The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import hashlib
import logging
import threading

from tests.test_leasefull42_dedupe_mirror import _mirror_props


def test_a_claim_thread_that_cannot_start_leaves_the_pushes_going(emulator, store, env,
                                                                  drive_env, tmp_path,
                                                                  monkeypatch, caplog):
    from drivestage.mirror import Mirror

    refused: list[str] = []

    def failing_for_the_claim(real):
        def start(bootstrap, *args, **kwargs):
            thread = getattr(bootstrap, "__self__", None)
            if getattr(thread, "name", "") == "drivestage-mirror-claim":
                refused.append(thread.name)
                raise RuntimeError("can't start new thread")   # (CPython's, at its limit)
            return real(bootstrap, *args, **kwargs)
        return start

    # (Thread.start's own call: _start_new_thread to 3.12, _start_joinable_thread since 3.13)
    for name in ("_start_new_thread", "_start_joinable_thread"):
        if hasattr(threading, name):
            monkeypatch.setattr(threading, name, failing_for_the_claim(getattr(threading, name)))
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.txt").write_bytes(b"m")
    mirror = Mirror(str(src), "drive:runs/exp", every=3600).start()
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        try:
            mirror.flush(30)   # (raised MirrorError: the RuntimeError failed the period)
            (src / "n.txt").write_bytes(b"n" * 1000)
            mirror.stop(30)
        finally:
            mirror.abandon(10)
    assert refused == ["drivestage-mirror-claim"]   # (one try: not again each period)
    assert mirror.last_error is None
    on_drive = {f["title"]: f["md5Checksum"] for f in emulator.files()
                if not f["mimeType"].endswith(".folder")}
    assert on_drive == {"m.txt": hashlib.md5(b"m").hexdigest(),
                        "n.txt": hashlib.md5(b"n" * 1000).hexdigest()}
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert said == ["the mirror's claim on runs/exp was not made (can't start new thread): "
                    "dedupe will not see this mirror"], said
    assert _mirror_props(emulator) == []
