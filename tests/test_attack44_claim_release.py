"""attack44: a mirror's claim (drivestage.mirror_claim) released just as its thread went round
its loop. The thread checked ``_done``, then cleared its wake-up: a release() in between (the
mirror's end: its final push done) set both, the clear erased the wake, and the thread slept
its whole renewal period (60 s) with the claim on Drive. The mirror's end waited its
RELEASE_WAIT_S and went, the process ended, and the claim stayed behind it.

The interleaving is made, not waited for: the wake-up's clear() runs release() just before it
clears, as the mirror's thread would have between the two. The real stack vs the emulator."""
from __future__ import annotations

import threading

from tests.test_leasefull42_dedupe_mirror import until_claims


def test_a_release_between_the_loop_check_and_its_clear_still_removes_the_claim(
        emulator, store, env, drive_env):
    from drivestage import mirror_claim
    from drivestage.paths import StorePath

    folder = emulator.add_folder("runs/exp")
    path = StorePath.parse("runs/exp")
    claim = mirror_claim.MirrorClaim(store.apart(), path)
    released: list[bool] = []
    cut = threading.Event()

    class _Wake(threading.Event):
        """The claim's wake-up, whose second clear() (the loop's second round) comes right
        after a release()."""
        rounds = 0

        def clear(self) -> None:
            type(self).rounds += 1
            if type(self).rounds == 2:
                released.append(claim.release(0))
                cut.set()
            super().clear()

    claim._wake = _Wake()
    claim.start(None)
    until_claims(emulator, lambda found: len(found) == 1, "no claim written")
    claim.point(folder)   # (the push's word: the same folder; the loop's second round)
    assert cut.wait(10), "no second round"
    try:   # (that one release only, as the mirror's end makes: a second would wake it)
        assert released == [False]
        assert until_claims(emulator, lambda found: not found, "the claim's thread slept "
                            "through its release: the claim stayed", bound=10) == []
    finally:
        claim.release(5)
