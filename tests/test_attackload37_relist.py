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

import os

import pytest

from drivestage.errors import RemoteChangedError
from drivestage.hooks import MAX_RELISTS
from test_walk37_fetch import Other, _asked, _replace_after_listing, _sync  # noqa: F401


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


def _pushed(store, folder, run: str, text: str) -> bytes:
    """``last.pt`` of ``run`` saved in ``folder`` and pushed into ``logs`` (replacing another
    run's ``last.pt`` there: ``keep_other_runs=False``, as ``replace_other_runs=True`` or
    ``push --force`` do)."""
    from drivestage import sidecar
    from drivestage.retention import RetentionPolicy
    from drivestage.sidecar import Sidecar
    from drivestage.upload_tree import push
    from test_walk37_fetch import _md5

    folder.mkdir(exist_ok=True)
    data = text.encode() * 100
    (folder / "last.pt").write_bytes(data)
    sidecar.write(str(folder / "last.pt"), Sidecar(epoch=3, md5=_md5(data), size=len(data),
                                                   saved=1.8e9, run=run))
    push(str(folder), (store, "logs"), RetentionPolicy(), keep_other_runs=False)
    return data


def test_a_name_another_runs_push_replaced_is_not_fetched_as_the_run_asked_for(
        emulator, proxy, env, tmp_path):
    """``latest_remote_checkpoint(run=A)`` answers run A's ``last.pt``; then run B's push
    replaces ``last.pt`` (its sidecar naming run B). Before walk37 the fetch said the file
    was gone; walk37's re-list fetched run B's bytes under the name: run A's loop went on
    from another run's state, said nowhere. Now NotFoundError naming the run, nothing at
    the target."""
    from drivestage.drive import connect
    from drivestage.errors import NotFoundError

    a, b = "20261206-010000-aaaa", "20261206-020000-bbbb"
    other = connect(api_root=emulator.url, token="test-token")
    _pushed(other, tmp_path / "a", a, "run a\n")
    sync = _sync(proxy, tmp_path)
    try:
        entry = sync.latest_remote_checkpoint(run=a)
        assert entry is not None and entry.name == "last.pt"
        _pushed(other, tmp_path / "bb", b, "run b\n")

        with pytest.raises(NotFoundError) as caught:
            sync.fetch(entry, str(tmp_path / "b" / "last.pt"))

        assert str(caught.value) == (
            f"drive:logs/last.pt is no longer run {a}'s on Drive (another run's push replaced "
            f"it: its sidecar names run {b}); nothing was fetched: ask "
            f"latest_remote_checkpoint() again")
        assert os.listdir(tmp_path / "b") == []
    finally:
        sync.on_train_end()


def test_a_name_the_same_runs_push_replaced_is_still_fetched_as_drive_has_it(
        emulator, proxy, env, tmp_path):
    """The control: run A's own next save replaces ``last.pt``: fetched as Drive has it now
    (walk37's re-list), run A's sidecar vouching for it."""
    from drivestage.drive import connect

    a = "20261206-010000-aaaa"
    other = connect(api_root=emulator.url, token="test-token")
    _pushed(other, tmp_path / "a", a, "run a, save 1\n")
    sync = _sync(proxy, tmp_path)
    try:
        entry = sync.latest_remote_checkpoint(run=a)
        newer = _pushed(other, tmp_path / "a", a, "run a, save 2\n")

        path = sync.fetch(entry, str(tmp_path / "b" / "last.pt"))

        with open(path, "rb") as fh:
            assert fh.read() == newer
    finally:
        sync.on_train_end()
