"""train28: without a retention policy a push sends every autosave in the run folder, and the
writer prunes all but the newest two as soon as it writes the next one. Those the push began
with beyond the newest two (a folder an earlier process left with four: two spared by its
push under way when it was killed, or a push that failed there before it sent them) were
pruned here while the push sent them: the checkpoint's bytes went on (the file was open),
its sidecar was gone, and Drive kept an autosave without its sidecar, a checkpoint's size,
for a day at least (drivestage.lone_autosaves). Now a push never sends an autosave the writer
may prune while it runs: it sends those it spares.

The real writer, the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import hashlib
import json

from test_trainer22_uploads import _remote_in
from test_writer import _job as autosave
from test_writer import _until
from trainer import checkpoint as ckpt

SPEC = "drive:Models/t28/logs"
FOLDER = "Models/t28/logs"


def _uploads_sending(emu, n: int) -> bool:
    """``n`` upload sessions were opened (their bodies go next)."""
    return sum(r.path.startswith("/upload/") and r.method == "POST" for r in emu.requests) >= n


def test_no_autosave_reaches_drive_without_its_sidecar_when_the_writer_prunes_it(
        emulator, drive_env, local_state, tmp_path):
    from trainer.drive import DriveFolder, retention_policy
    from trainer.writer import BackgroundWriter

    out = tmp_path / "run"
    out.mkdir()
    for i in (1, 2, 3, 4):           # what a killed process left here, none of it on Drive
        ckpt.save_checkpoint(autosave(i, size=400_000).state,
                             str(out / f"autosave_{i:08d}.pt"), saved=1000.0 + i)
    drive = DriveFolder(SPEC, str(out), retention_policy(0, 0, None))    # no policy
    emulator.faults.throttle(400_000)           # every body takes a while
    writer = BackgroundWriter(str(out), drive)
    try:
        writer.push_soon()                       # the run's first push (on_fit_start)
        _until(lambda: _uploads_sending(emulator, 2), "the push never began to send")
        job = autosave(5)
        writer.submit(job)
        _until(lambda: job.written, "autosave 5 was not written")
    finally:
        closed = writer.close()
        emulator.faults.clear()
    assert closed is True
    remote = _remote_in(emulator, FOLDER)
    pts = {n for n in remote if n.endswith(".pt")}
    lone = sorted(n for n in pts if n[:-3] + ".json" not in remote)
    assert lone == [], sorted(remote)
    # Every sidecar on Drive vouches for the checkpoint beside it.
    for name in pts:
        side = json.loads(emulator.read_bytes(emulator.find(f"{FOLDER}/{name[:-3]}.json")["id"]))
        assert side["md5"] == remote[name], name
    assert not any(n.endswith(".json") and n[:-5] + ".pt" not in remote for n in remote), remote
    assert {"autosave_00000004.pt", "autosave_00000005.pt"} <= pts
