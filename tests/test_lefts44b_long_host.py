"""lefts44b: a property claim (a mirror's claim, a trainer's lease property) cuts the host
name to fit Drive's 124 bytes: a K8s pod's name (up to 63 characters) kept 37-39 of them. A
claim of this machine (its tag: boot id and pid namespace) whose process was SIGKILLed was
then never recognised as this machine's own dead one: ``dedupe`` refused its folder, and a
trainer's take-over waited, for its whole stale_s (150 s), not at once. The cut name is now
compared as the start of this machine's. The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import os
import socket

import pytest

from drivestage import mirror_claim, run_claims
from drivestage.errors import RunHeldError
from drivestage.store import RemoteEntry
from drivestage.temps import namespace_tag
from trainer import lease_props

POD = "trainer-job-7f9c4d8b6-xk2lp-" + "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r"   # (63: a K8s pod's)


def _a_dead_pid() -> int:
    """A process of this machine that has ended (as a SIGKILL leaves it): forked, reaped."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_this_machines_dead_claim_under_a_long_host_name_is_no_ones_at_once(
        emulator, store, drive_env, monkeypatch):
    from drivestage.drive import server_clock

    assert len(POD) == 63
    monkeypatch.setattr(socket, "gethostname", lambda: POD)
    folder = RemoteEntry(emulator.add_folder("runs/exp"), "exp", True)
    dead, now = _a_dead_pid(), round(server_clock.now(), 1)

    def claim(key: str, room: int, pid: int, host: str = POD) -> None:
        value = run_claims.property_value(run_claims.PropertyClaim(
            1, now, now, pid, namespace_tag(), False, host, 150.0), room - len(key.encode()))
        cut = run_claims.property_claim(value)
        assert cut is not None and 0 < len(cut.host) < len(host)   # (cut, as written)
        store.set_public_property(folder, key, value)

    def refused() -> str:
        with pytest.raises(RunHeldError) as got:
            run_claims.refuse_held(store, [(folder, [])], "merging it")
        return str(got.value)

    mirror_key = run_claims.MIRROR_PREFIX + "0123456789abcdef"
    trainer_key = lease_props.key_of("deaddeaddeaddead")
    for key, room in ((mirror_key, mirror_claim._MAX_BYTES),
                      (trainer_key, lease_props.MAX_BYTES)):
        claim(key, room, dead)
        # This machine's, its process gone: no one's now, not in 150 s.
        run_claims.refuse_held(store, [(folder, [])], "merging it")
        # A live process of this machine under the same cut name holds it.
        claim(key, room, os.getpid())
        assert f"pid {os.getpid()} on {POD[:30]}" in refused()
        # Another machine's name (the same tag: a shared pid namespace): held, as before.
        claim(key, room, dead, host="other-" + POD)
        assert f"pid {dead} on other-" in refused()
        store.set_public_property(folder, key, None)
