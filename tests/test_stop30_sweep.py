"""stop30: the folders stops left in this machine's temporary folder (``trainer-stop-…``: a
stop's save written elsewhere, kept where Drive had not verified it in time, or by a version
before stop29 at every such stop) stayed for good, a whole checkpoint each (70 MB at width 1).
Now the run's next start removes each one whose checkpoint is verified on ``drive.logs`` or in
the run folder with the same md5; one whose bytes are nowhere else stays, as does anything
else there. The real save policy and DriveFolder against the emulator."""
from __future__ import annotations

import os
import subprocess
import tempfile

from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from test_train28_hung_disk import _policy

SPEC = "drive:Models/s30/sweep"


def test_the_next_start_removes_earlier_stops_copies_held_elsewhere_and_keeps_the_rest(
        emulator, drive_env, local_state, tiny_config, caplog):
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder
    from drivestage import temps
    from trainer.saving import snapshot

    logs = os.path.abspath(os.path.join(tempfile.tempdir, "..", "logs"))
    drive = DriveFolder(SPEC, logs)
    run, writer, saver = _policy(tiny_config, logs, drive)
    state = snapshot(run)
    tmp = tempfile.tempdir

    def left(folder: str, name: str, **change) -> str:
        os.makedirs(os.path.join(tmp, folder))
        return ckpt.save_checkpoint({**state, **change}, os.path.join(tmp, folder, name))

    on_drive = left("trainer-stop-ondrive", "autosave_00000003.pt")
    drive.send_alone([on_drive, ckpt.sidecar_path(on_drive)])
    ckpt.save_checkpoint({**state, "run": "r5"}, os.path.join(logs, "autosave_00000005.pt"))
    left("trainer-stop-here", "autosave_00000005.pt", run="r5")
    only = left("trainer-stop-only", "autosave_00000007.pt", iteration=7, epoch=2,
                epoch_iteration=1)                                      # nowhere else
    unsaid = left("trainer-stop-unsaid", "autosave_00000001.pt")        # (no further on)
    killed = left("trainer-stop-killed", "autosave_00000003.pt")  # killed before its sidecar
    os.unlink(ckpt.sidecar_path(killed))
    left("trainer-stop-other", "autosave_00000003.pt", run="another")   # other bytes
    left("trainer-stop-more", "autosave_00000003.pt")                   # and another file:
    open(os.path.join(tmp, "trainer-stop-more", "notes.txt"), "w").close()
    gone = subprocess.Popen(["true"])
    gone.wait()
    for folder, pid in (("trainer-stop-cut", gone.pid), ("trainer-stop-live", os.getpid())):
        os.makedirs(os.path.join(tmp, folder))   # a write cut off; one under way
        name = f".autosave_00000009.pt.{temps.namespace_tag()}-{pid}.abcdef.tmp"
        open(os.path.join(tmp, folder, name), "w").close()
    try:
        with caplog.at_level("INFO", logger="trainer"):
            saver.on_fit_start(run)
            assert saver.swept.join(30)
    finally:
        writer.close()
    assert sorted(n for n in os.listdir(tmp) if n.startswith("trainer-")) == [
        "trainer-stop-live", "trainer-stop-more", "trainer-stop-only", "trainer-stop-other",
        "trainer-stop-unsaid"]
    assert sorted(os.listdir(os.path.join(tmp, "trainer-stop-only"))) == [
        "autosave_00000007.json", "autosave_00000007.pt"]
    said = [r.getMessage() for r in caplog.records if "trainer-stop-" in r.getMessage()]
    assert [m for m in said if "further on" in m] == [
        f"{os.path.dirname(only)} holds this run's checkpoint of epoch 3, iteration 7, further "
        f"on than where it starts, on this machine only (an earlier stop's, not verified on "
        f"Drive in time): stop and run again with --resume {only} to train on from it"], said
    assert unsaid and len([m for m in said if m.startswith("removed ")]) == 3, said


def test_a_copy_in_the_run_folder_inside_a_drive_mount_does_not_count(
        tiny_config, working_drive_mount):
    """The run folder is in Colab's Drive mount: its copy is in the mount's cache, not known to
    be on Drive (lost with the mount: mount30), so the only other copy in /tmp stays."""
    from trainer import checkpoint as ckpt
    from trainer.saving import snapshot

    logs = working_drive_mount.point / "MyDrive" / "logs"
    run, writer, saver = _policy(tiny_config, logs)
    state = snapshot(run)
    os.makedirs(os.path.join(tempfile.tempdir, "trainer-stop-x"))
    ckpt.save_checkpoint(state, os.path.join(tempfile.tempdir, "trainer-stop-x",
                                             "autosave_00000003.pt"))
    ckpt.save_checkpoint(state, str(logs / "autosave_00000003.pt"))
    try:
        saver.on_fit_start(run)
        assert saver.swept.join(30)
    finally:
        writer.close()
    assert sorted(os.listdir(os.path.join(tempfile.tempdir, "trainer-stop-x"))) == [
        "autosave_00000003.json", "autosave_00000003.pt"]
