"""attacktr29: a stop's save on a run folder whose disk does not answer goes to Drive from a
temporary folder (train28, trainer/stop_save.py). Its other branch, ``nor sent to … from
another folder``, had no test:

- Drive refuses the upload: the save was complete in /tmp/trainer-stop-…, the only copy of
  the stopped state, and the line did not name it (``--resume auto`` never looks there): on a
  machine that stays (a workstation whose NFS mount hangs), the user could not find it.
- /tmp is full too: nothing is left in /tmp (an empty folder was); the state is sent from
  memory (memsave33).

A hung disk is a ``bindfs`` mount stopped with SIGSTOP (train28's fixture); a full /tmp is a
small tmpfs given as the temporary folder (``tempfile.tempdir``, as TMPDIR does). The real
writer and save policy; the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import os
import re
import tempfile

import pytest

from _tmpfs import small_disk  # noqa: F401  (a fixture)
from test_attacktr29_hung import _ended
from test_keeplocal25 import _save_epochs
from test_train28_hung_disk import _policy, _sigterm_stop, hung  # noqa: F401  (a fixture)

SPEC = "drive:Models/tr29/elsewhere"


@pytest.fixture(autouse=True)
def _own_tmp(tmp_path, monkeypatch):
    """A stop's copy elsewhere goes into the test's own folder, not this machine's /tmp (where
    it stays for good, on purpose: the only copy)."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


def _stop_on_hung_disk(hung, tiny_config, before_stop) -> str:
    """Epoch 1 verified on Drive; the disk hangs, ``before_stop()``, SIGTERM at iteration 3:
    the stop's line (within its grace of 4 s)."""
    from trainer.drive import DriveFolder

    logs = hung.path / "logs"
    os.makedirs(logs)
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(SPEC, str(logs)), grace=4.0)
    saver.drive_spec = SPEC
    _save_epochs(run, saver, 1)
    writer.wait(saver._epoch_job)
    assert writer.verified("epoch_001.pt")
    hung.hang()
    before_stop()
    out: list = []

    stop = _sigterm_stop(run, saver, out)

    try:
        ended, took = _ended(stop, 20)
    finally:
        hung.answer()
        writer.close()
    assert ended and took < 4.0 + 2.0, f"the stop took {took:.1f} s (grace 4 s)"
    return str(out[0])


HEAD = (r"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003\.pt could not be "
        r"written \(its write in \S+ has not ended after \d\.\d s: the disk does not answer "
        r"\(a hung network or FUSE mount\?\)\), nor sent to drive:Models/tr29/elsewhere from "
        r"another folder \(")


def test_a_stop_save_drive_refuses_is_named_where_it_is_on_this_machine(
        hung, emulator, drive_env, local_state, fast_retries, tiny_config):
    said = _stop_on_hung_disk(hung, tiny_config, lambda: emulator.faults.inject(
        "POST", r"/upload/", reason="storageQuotaExceeded", times=None))
    m = re.fullmatch(
        HEAD + r"Not enough Drive storage.*\); it is complete in (/\S+/trainer-stop-\w+)/"
        r"autosave_00000003\.pt on this machine only: --resume \1/autosave_00000003\.pt goes on "
        r"from it; elsewhere --resume auto continues from the newest checkpoint there "
        r"\(Drive: \d+ s ago, epoch 1 iteration 2 \(epoch_001\.pt\)\)", said)
    assert m, said
    from drivestage.localfs import file_md5
    from trainer import checkpoint as ckpt

    saved = os.path.join(m.group(1), "autosave_00000003.pt")
    side = ckpt.read_sidecar(saved)
    assert side is not None and side.iteration == 3 and file_md5(saved) == side.md5


def test_a_stop_save_with_tmp_full_too_is_sent_from_memory_and_leaves_nothing_there(
        hung, small_disk, emulator, drive_env, local_state, tiny_config, monkeypatch):
    """/tmp full too: the line said ``nor sent to … from another folder ([Errno 28] …)``, the
    state lost; it is sent from memory now (memsave33, tests/test_memsave33_drive.py)."""
    tmp = small_disk(8 * 1024)   # (a checkpoint of the tiny model: 24 KiB)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    said = _stop_on_hung_disk(hung, tiny_config, lambda: None)
    assert re.fullmatch(
        HEAD.split(r", nor sent to")[0] + r"; it is sent to drive:Models/tr29/elsewhere/"
        r"autosave_00000003\.pt from memory instead \(nor could this machine take it: \[Errno "
        r"28\] No space left on device\) and verified there \(\d+\.\d s after the signal\); "
        r"resume with --resume auto", said), said
    assert [n for n in os.listdir(tmp) if n.startswith("trainer-stop-")] == []


def test_a_stop_save_whose_tmp_is_on_the_same_hung_disk_ends_within_its_grace(
        hung, emulator, drive_env, local_state, tiny_config, monkeypatch):
    """/tmp on the disk that does not answer too (TMPDIR on the same mount): the copy
    elsewhere waits as the run folder's write does; the stop still ends within its grace and
    says neither reached Drive (held before: no change needed)."""
    tmp = hung.path / "tmp"
    os.makedirs(tmp)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    said = _stop_on_hung_disk(hung, tiny_config, lambda: None)
    assert re.fullmatch(
        HEAD + r"not within train\.grace_seconds \(4 s\)\); --resume auto continues from the "
        r"newest checkpoint there \(Drive: \d+ s ago, epoch 1 iteration 2 \(epoch_001\.pt\)\)",
        said), said
