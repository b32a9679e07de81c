"""attackint47: ``push runs/latest`` where ``latest`` is a link the trainer points at each new
run, pointed at the next run while the push ran. pushlefts47's reads check that each file
lands where the walk found it, and compared the folder ``runs/latest`` leads to now with it:
the push stopped, exit 1, with ``runs/latest became a link while the push ran (a folder when
it began); … push again once it is a folder``: false (a link when it began) and no advice a
user can follow (it is a link for good). A cron'd push of ``latest`` failed each time the
link moved during one. Now each file is read where the walk found it (the run the link led
to as the push began): that run's files, sent whole, exit 0."""
from __future__ import annotations

import os

import pytest

from _checkpoints import md5
from _cli import run
from _drive_state import live_md5s
from _proxy import Reply


@pytest.mark.timeout(60)
def test_push_of_a_latest_link_pointed_at_the_next_run_meanwhile_sends_the_run_it_walked(
        emulator, penv, proxy, tmp_path):
    runs = tmp_path / "runs"
    for name, byte in (("run_42", b"a"), ("run_43", b"b")):
        (runs / name).mkdir(parents=True)
        (runs / name / "train.log").write_bytes(byte * 1000)
    os.symlink("run_42", runs / "latest")
    done: list[bool] = []

    def point_on(status: int, headers: dict, body: bytes) -> Reply:
        if not done:   # (the push's first listing: after its walk)
            done.append(True)
            os.unlink(runs / "latest")
            os.symlink("run_43", runs / "latest")
        return Reply(status, headers, [body])
    proxy.on("GET", r"^/drive/v2/files", point_on)
    code, _, err = run("push", str(runs / "latest"), "drive:runs/a", "--jobs", "1")
    assert done
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {"train.log": [md5(b"a" * 1000)]}, err
