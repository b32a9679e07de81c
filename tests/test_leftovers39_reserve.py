"""``pull --reserve 999999999999999999999999TB`` (leftovers39): a reserve larger than any
disk can never be kept free, and the pull said so as `keeping 909494701772928276496384.0 TiB
in reserve`, exit 1. Now a usage error (exit 2) before anything is read, naming the value as
typed; the bound is 1 EiB (a reserve above DEST's disk, below that, is how tests make a disk
full: it stays exit 1, said by the space check). The real CLI, forked (tests/_forkcli.py)."""
from __future__ import annotations

import os


from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


def _pull(tmp_path, reserve):
    (tmp_path / "a.txt").write_text("hi")
    done = cli_server().run(["pull", str(tmp_path / "a.txt"), str(tmp_path / "d" / "e"),
                             "--reserve", reserve], env=dict(os.environ), cwd=str(tmp_path),
                            timeout=60, text=True)
    return done.returncode, done.stderr


def test_a_reserve_larger_than_the_disk_is_a_usage_error(local_state, tmp_path):
    code, err = _pull(tmp_path, "999999999999999999999999TB")
    assert code == 2, err
    assert err.splitlines()[-1] == (
        "Error: Invalid value for '--reserve': 999999999999999999999999TB is more than any "
        "disk holds (1 EiB at most); give the room to keep free on DEST's disk, e.g. 5GB")
    assert not (tmp_path / "d").exists()


def test_a_reserve_of_1_eib_is_taken_and_said_by_the_space_check(local_state, tmp_path):
    code, err = _pull(tmp_path, str(1 << 60))
    assert code == 1, err
    assert err.splitlines()[-1].endswith(
        "(keeping 1048576.0 TiB in reserve); free some space, lower --reserve or pull "
        "elsewhere"), err


def test_a_reserve_the_disk_holds_is_taken(local_state, tmp_path):
    code, err = _pull(tmp_path, "1KB")
    assert code == 0, err
    assert (tmp_path / "d" / "e" / "a.txt").read_text() == "hi"


def test_a_size_is_parsed_exactly():
    """Through a float, 999999999999999999999999TB was 1000000000000000042420637374017961984
    bytes."""
    from drivestage.sizes import parse_size

    assert parse_size("999999999999999999999999TB") == 999999999999999999999999 * 10**12
    assert parse_size("1.5GiB") == 3 << 29 and parse_size(".5K") == 512
