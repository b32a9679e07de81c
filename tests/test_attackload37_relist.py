"""attackload37: walk37's ``CheckpointSync.latest_remote_checkpoint`` lists the folder again
where a sidecar changed since its listing (another machine's push), at most
:data:`drivestage.hooks.MAX_RELISTS` times. Past the bound it answered from the last
listing, in which the pair replaced counts as none: with a server (or a machine) that
replaces ``last.pt`` after every listing, it answered None while Drive held the run (a fresh
machine's resume started over: the very defect the re-list was for), or an older checkpoint
(the resume went back). ``fetch`` past the same bound raises RemoteChangedError; so must
this: never an answer from a listing known to be out of step.

Real stack, the emulator, the other machine's real push run by the proxy right after each
answer to this machine's listing (tests/_proxy.py, as test_walk37_fetch)."""
from __future__ import annotations

import pytest

from drivestage.errors import RemoteChangedError
from drivestage.hooks import MAX_RELISTS
from test_walk37_fetch import Other, _asked, _replace_after_listing, _sync, proxy  # noqa: F401


def test_a_pair_replaced_after_every_listing_is_never_answered_as_none(
        emulator, proxy, env, tmp_path):
    other = Other(emulator, tmp_path / "a")
    other.save()
    sync = _sync(proxy, tmp_path)
    try:
        _replace_after_listing(proxy, emulator, other)

        with pytest.raises(RemoteChangedError) as caught:
            sync.latest_remote_checkpoint()

        assert str(caught.value) == (
            f"a checkpoint's sidecar in drive:logs was replaced on Drive {MAX_RELISTS + 1} "
            f"times while it was listed (another machine pushing it); nothing was chosen: ask "
            f"again once that machine is done")
        assert _asked(proxy, emulator)[0] == MAX_RELISTS + 1
    finally:
        proxy.rules.clear()
        sync.on_train_end()
