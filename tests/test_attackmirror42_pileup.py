"""attackmirror42: the claims of mirrors killed (SIGKILL, a Colab runtime gone) pile up on
their destination. A mirror's claim (drivestage.mirror_claim) is a PUBLIC property of DEST,
removed at the mirror's end; a mirror killed leaves it there for good (dedupe reads it as no
one's: its process ended, or it is stale). Drive keeps at most 30 PUBLIC properties a file:
after 30 restarts of a killed mirror the next one's claim was refused (logged at debug
level), so dedupe merged under that running mirror, and a trainer's lease property on that
folder (a full Drive) was refused too. A mirror now removes the claims on its folder whose
holder is gone (run_claims.gone) when it makes its own.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import socket
import subprocess

import pytest

from tests.test_guards41_dedupe import _run, _twins
from tests.test_leasefull42_dedupe_mirror import _mirror, _mirror_props, _refused, \
    until_claims
from tests.test_messages_dedupe import live


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _killed_claims(store, folder_id: str, n: int) -> set[str]:
    """What ``n`` mirrors killed into ``folder_id`` left: half of this machine (their process
    ended), half of another machine, silent for 10 min (stale after 150 s)."""
    from drivestage.drive import server_clock
    from drivestage.store import RemoteEntry
    from drivestage.temps import namespace_tag

    now, pid, keys = round(server_clock.now(), 1), _dead_pid(), set()
    for i in range(n):
        key = f"drivestage-mirror-{i:016x}"
        here = i % 2 == 0
        value = (f"1|{now - 5:.1f}|{now - 50:.1f}|{pid}|{namespace_tag()}|0|150.0|"
                 f"{socket.gethostname()}" if here else
                 f"1|{now - 600:.1f}|{now - 900:.1f}|4242|0badc0de|0|150.0|nas")
        store.set_public_property(RemoteEntry(folder_id, "exp", True), key, value)
        keys.add(key)
    return keys


def test_a_mirror_into_a_folder_full_of_killed_mirrors_claims_still_claims_it(
        emulator, store, tmp_path):
    old, new = _twins(emulator, store)
    killed = _killed_claims(store, old, 30)
    mirror = _mirror(emulator, tmp_path, "drive:runs/exp")
    try:
        mine = set(_mirror_props(emulator)) - killed
        assert len(mine) == 1, _mirror_props(emulator)
        before = live(emulator)
        code, out, err = _run("dedupe", "drive:runs/exp")
        assert code == 1, err
        _refused(err, "drive:runs/exp")
        assert live(emulator) == before
    finally:
        mirror.stop(60)
    until_claims(emulator, lambda found: found == [], "the claim was never removed")


def test_a_live_mirrors_claim_is_never_removed_by_another_mirror(emulator, store, tmp_path):
    """Two mirrors into one DEST: each keeps its own claim, the second removes none of the
    first's (it is live), and each removes its own at its end."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _mirror(emulator, tmp_path / "a", "drive:runs/exp")
    try:
        one = set(_mirror_props(emulator))
        assert len(one) == 1
        second = _mirror(emulator, tmp_path / "b", "drive:runs/exp")
        try:
            both = set(_mirror_props(emulator))
            assert len(both) == 2 and one < both
        finally:
            second.stop(60)
        until_claims(emulator, lambda found: set(found) == one, "the second kept its claim")
    finally:
        first.stop(60)
    until_claims(emulator, lambda found: found == [], "the first kept its claim")
