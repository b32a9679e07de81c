"""attacknew35: a local DEST's copy kept aside (``.drivestage-held.<random>.<name>``,
:mod:`drivestage.local_held`), pulled by its path, is said to be what it is."""
from __future__ import annotations

import os

from _cli import run


def test_a_copy_kept_aside_pulled_by_its_path_is_named_for_what_it_is(local_state, tmp_path):
    """``pull /nas/run/.drivestage-held.<random>.last.pt ./x`` (the name ``ls -a`` shows
    after a killed push): it said ``… rename that item on Drive`` of a local folder's file,
    and not what the file is."""
    dest = tmp_path / "nas"
    dest.mkdir()
    aside = dest / ".drivestage-held.0123456789ab.last.pt"
    aside.write_bytes(b"old checkpoint")

    code, out, err = run("pull", str(aside), str(tmp_path / "x"))

    assert code == 2, err
    assert out == ""
    assert err == (f"Error: {aside}: .drivestage-held.0123456789ab.last.pt is an old copy of "
                   "last.pt that a push into that local folder keeps aside until the new one "
                   "is verified (then removed), a name drivestage keeps for itself; pull "
                   "last.pt, or copy this one with cp\n")
    assert not (tmp_path / "x").exists()
