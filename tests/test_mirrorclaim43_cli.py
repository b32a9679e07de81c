"""mirrorclaim43: ``drivestage mirror`` with Drive's properties endpoint hanging (every
property request held 60 s: its claim on DEST, drivestage.mirror_claim, cannot be read or
written). The claim's requests ran in the push's period: the first push waited on them, and
so did the final push after a SIGTERM, which a VM follows by a kill about 30 s later. Now the
first push is done at once, and so is the final one: exit 0 within the grace, the checkpoint
on Drive whole. A child forked from the CLI server; the real stack against the emulator."""
from __future__ import annotations

import hashlib
import os
import signal
import threading
import time

from _cli import child_env
from _forkcli import PIPE, cli_server
from _sigpush42 import until

from tests.test_leasefull42_dedupe_mirror import _mirror_props
from tests.test_mirrorclaim43_held import _claim_asked, _held, _let_go


def test_the_mirror_command_pushes_and_ends_within_its_grace_with_its_claim_hung(
        emulator, local_state, tmp_path):
    emulator.add_folder("runs/exp")   # (there before: its claim was looked up first)
    src = tmp_path / "run"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    _held(emulator)
    proc = cli_server().popen(["mirror", str(src), "drive:runs/exp", "--every", "3600",
                               "--grace", "20"], env=child_env(emulator), stdout=PIPE,
                              stderr=PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        # (held 60 s, the claim's lookup and sweep came first: no push within this bound)
        until(proc, lambda: any(" pushed: " in line for line in lines), "no first push")
        until(proc, lambda: bool(_claim_asked(emulator)), "the claim asked nothing")
        blob = os.urandom(1 << 20)
        (src / "epoch_001.pt").write_bytes(blob)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _let_go(emulator)
    reader.join(timeout=30)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "final push in" in err and "Traceback" not in err, err
    assert took < 15, took   # (the final push, then the claim's removal waited 2 s at most)
    assert {f["title"]: f.get("md5Checksum") for f in emulator.files()
            if not f["mimeType"].endswith(".folder")} == {
        "results.csv": hashlib.md5(b"epoch\n1\n").hexdigest(),
        "epoch_001.pt": hashlib.md5(blob).hexdigest()}
    assert _mirror_props(emulator) == []   # (never written: every request of it was held)
