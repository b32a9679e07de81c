"""attack49: a folder pull that runs while the dataset is being updated on Drive.

The walk lists the tree once, before the first byte moves; each file is then verified
against its md5 *as listed*. A file replaced on Drive after the listing was never looked at
again: the pull ended exit 0 with files of two versions side by side (here: ``big.bin``
already new when listed, ``a.txt`` replaced while ``big.bin`` came), a tree Drive never held
once the update ended, and nothing said (on main: a.txt staged as version 1, no error).
Now the folders are listed once more at the end where something was downloaded
(:mod:`drivestage.stage_recheck`).
"""
from __future__ import annotations

import os
import threading

import drivestage

from _cli import run
from _messages import error_line, renders, shown
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

MiB = 1 << 20


@renders("changed on Drive while this pull ran")
def test_a_file_replaced_during_a_folder_pull_is_not_left_mixed_in_silence(
        emulator, drive_env, tmp_path):
    v1, v2 = b"labels v1\n" * 100, b"labels v2\n" * 100     # the same size: md5 tells
    a_id = emulator.add_file("ds/a.txt", v1)
    big_id = emulator.add_file("ds/big.bin", os.urandom(2 * MiB))   # (already version 2)
    held = emulator.faults.hold(big_id, MiB, timeout=20)
    box: dict = {}

    def pull() -> None:
        box["run"] = run("pull", "drive:ds", str(tmp_path / "data"), "-q", "--chunk-size", "1M")

    t = threading.Thread(target=pull, daemon=True)
    t.start()
    try:
        assert held.reached.wait(20), "big.bin's download never started"
        # a.txt (small: staged first) is replaced on Drive while big.bin comes.
        store = drivestage.connect()
        old = store.resolve("ds/a.txt")
        local = tmp_path / "new.txt"
        local.write_bytes(v2)
        assert store.upload(str(local), store.resolve("ds"), "a.txt", replace=old).id == a_id
    finally:
        held.release()
    t.join(30)
    assert not t.is_alive()
    staged = (tmp_path / "data" / "ds" / "a.txt").read_bytes()
    assert emulator.read_bytes(a_id) == v2
    # What a user relies on: a pull that ends without an error staged what Drive holds; one
    # that ran across a change says so, naming the file, and the rerun stages the new one.
    code, _out, err = box["run"]
    assert code == 1 and staged == v1, err
    line = error_line(err)
    assert line.startswith("Error: drive:ds/a.txt changed on Drive while this pull ran "), err
    shown("changed on Drive while this pull ran", line)
    code, _out, err = run("pull", "drive:ds", str(tmp_path / "data"), "-q")
    assert code == 0, err
    assert (tmp_path / "data" / "ds" / "a.txt").read_bytes() == v2
