"""Messages of the orphan-sidecar rule (drivestage.orphans), made to happen."""
from __future__ import annotations

import json
import logging
import threading

from _checkpoints import RUN, save
from _cli import ok
from _drive_state import held_since
from _messages import log_text, renders, shown

FOLDER = "Models/logs"
T0 = 1764600000.0


def _orphaned(emulator, src) -> None:
    """epoch 3 then epoch 4 pushed, epoch_003.pt deleted on Drive: epoch_003.json alone."""
    for stem, epoch in (("epoch_003", 3), ("epoch_004", 4)):
        save(str(src), stem, epoch, T0 + epoch, run=RUN)
        ok("push", str(src), f"drive:{FOLDER}")
    emulator.store.delete(emulator.find(f"{FOLDER}/epoch_003.pt")["id"])


@renders("orphan sidecar: … is not here, and … of its run is further on and verified")
def test_prune_dry_run_shows_an_orphans_retirement(emulator, drive_env, local_state, tmp_path):
    _orphaned(emulator, tmp_path / "a")
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1", "--dry-run")
    line = next(row for row in out.splitlines() if "epoch_003.json" in row)
    shown("orphan sidecar: … is not here, and … of its run is further on and verified", line)
    assert line.startswith("delete")


@renders("orphan sidecar: … is not here, and … of its run is where it went back to (verified)")
def test_prune_dry_run_retires_the_sidecar_of_a_line_left_behind(emulator, drive_env,
                                                                 local_state, tmp_path):
    """Epochs 9 and 10, then the run sent back to 5 (its sidecar a branch record); a
    retention killed after epoch_010.pt left its sidecar alone."""
    src = tmp_path / "a"
    for epoch in (5, 9, 10):
        save(str(src), f"epoch_{epoch:03d}", epoch, T0 + epoch, run=RUN, saved=T0 + epoch)
    side = src / "epoch_005.json"
    side.write_text(json.dumps({**json.loads(side.read_text()), "saved": T0 + 20,
                                "branch": T0 + 5}))
    ok("push", str(src), f"drive:{FOLDER}")
    emulator.store.delete(emulator.find(f"{FOLDER}/epoch_010.pt")["id"])
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1", "--dry-run")
    line = next(row for row in out.splitlines() if "epoch_010.json" in row)
    shown("orphan sidecar: … is not here, and … of its run is where it went back to "
          "(verified)", line)
    assert line.startswith("delete")
    assert "left behind (the run went back to epoch 5)" in out  # epoch_009.pt's reason


@renders("kept the orphan sidecar … its checkpoint came back or it changed since the plan")
def test_an_orphans_checkpoint_back_before_the_deletion_keeps_it(emulator, drive_env,
                                                                 local_state, tmp_path, caplog,
                                                                 monkeypatch):
    """The checkpoint is put back on Drive between the plan and the deletion (the prune's
    second listing waits for it)."""
    from drivestage.drive import connect
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy

    _orphaned(emulator, tmp_path / "a")
    # The CLI's pushes above keep drivestage's records to its own handler: caplog needs them.
    monkeypatch.setattr(logging.getLogger("drivestage"), "propagate", True)
    real = connect(api_root=emulator.url, token="test-token")
    listed, back = [], threading.Event()

    class Store:
        def __getattr__(self, attr):
            return getattr(real, attr)

        def list(self, folder):
            listed.append(folder)
            if len(listed) == 2:
                emulator.add_file(f"{FOLDER}/epoch_003.pt",
                                  (tmp_path / "a" / "epoch_003.pt").read_bytes())
                back.set()
            return real.list(folder)

    with caplog.at_level(logging.WARNING, logger="drivestage"):
        prune(FOLDER, RetentionPolicy(keep_last=1), store=Store())
    assert back.is_set()
    text = log_text([r for r in caplog.records if "orphan" in r.getMessage()])
    shown("kept the orphan sidecar … its checkpoint came back or it changed since the plan", text)
    side = emulator.find(f"{FOLDER}/epoch_003.json")
    assert json.loads(emulator.read_bytes(side["id"]))["epoch"] == 3


@renders("orphan sidecar: … is not here, and this sidecar reached the store … ago")
def test_prune_dry_run_shows_an_old_orphans_retirement(emulator, drive_env, local_state,
                                                      tmp_path):
    """epoch 3's checkpoint gone, its sidecar on Drive for two days (Drive's clock moved back
    on the record), nothing of its run further on."""
    import time

    save(str(tmp_path / "a"), "epoch_003", 3, T0 + 3, run=RUN)
    ok("push", str(tmp_path / "a"), f"drive:{FOLDER}")
    emulator.store.delete(emulator.find(f"{FOLDER}/epoch_003.pt")["id"])
    then = time.time() - 2 * 24 * 3600
    held_since(emulator, emulator.find(f"{FOLDER}/epoch_003.json")["id"], then)
    out = ok("prune", f"drive:{FOLDER}", "--keep-last", "1", "--dry-run")
    line = next(row for row in out.splitlines() if "epoch_003.json" in row)
    shown("orphan sidecar: … is not here, and this sidecar reached the store … ago", line)
    assert line.startswith("delete")
