"""docs/troubleshooting.md: train28's messages made to happen (a run folder on a disk that
stops answering: tests/test_train28_hung_disk.py; the end of training when the final push
failed after every file was verified: tests/test_train28_final_push.py)."""
from __future__ import annotations

from _messages import renders, shown
from test_train28_final_push import refused_deletions
from test_train28_hung_disk import hung, stuck_warning  # noqa: F401  (a fixture)


@renders("has not ended for … s: the disk does not answer (a hung network or FUSE mount?)")
def test_a_write_on_a_disk_that_does_not_answer(hung, tiny_config, caplog):  # noqa: F811
    shown("has not ended for … s: the disk does not answer (a hung network or FUSE mount?)",
          stuck_warning(hung, tiny_config, caplog)[0])


@renders("every one verified there, the newest … (…); the rest of the final push failed")
def test_a_final_push_that_verified_every_file_and_failed_after(
        emulator, drive_env, local_state, fast_retries, tiny_config, one_torch_thread, tmp_path):
    r = refused_deletions(emulator, tiny_config)
    assert r.exit_code == 0, r.output
    shown("every one verified there, the newest … (…); the rest of the final push failed",
          r.output.strip().splitlines()[-1])
