"""A push into a local DEST killed right after it set the old ``last.pt`` aside leaves DEST
with the old copy aside (``.drivestage-held.<random>.last.pt``), the old sidecar that
vouches for it, and nothing at ``last.pt``. The next push lists that copy as ``last.pt``
and replaces it: it must keep it until the new pair is verified, as the first push did,
since it is the one checkpoint a sidecar vouches for (found by attacknet36)."""
from __future__ import annotations

import os
import subprocess
import sys

from _cli import run
from test_pair36_held_pull import _KILLED, _aside, _pair, _resume, _save


def test_a_push_after_one_killed_with_the_old_copy_aside_keeps_it_until_its_sidecar(
        local_state, tmp_path):
    """Push 1 (epoch 1) in; push 2 (epoch 2) killed once epoch 1 is aside; push 3 (epoch 3)
    killed once its last.pt is in place, before its sidecar. DEST must still hold a pair
    its sidecar vouches for (epoch 1): the pull and a resume get it."""
    from drivestage.upload_tree import push

    src, folder = tmp_path / "run", tmp_path / "nas" / "run"
    old = _save(src, 1)
    push(str(src), str(folder))
    _save(src, 2)
    for step in ("held", "renamed"):
        if step == "renamed":
            _save(src, 3)
        proc = subprocess.run([sys.executable, "-c", _KILLED, str(src), str(folder), step],
                              env=dict(os.environ), capture_output=True)
        assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert _aside(folder), sorted(os.listdir(folder))   # epoch 1, still kept aside

    code, _, err = run("pull", str(folder), str(tmp_path / "pulled"))

    assert code == 0, err
    assert _pair(tmp_path / "pulled" / "run") == (1, old)
    assert _resume(tmp_path / "fresh", folder) == (1, old)
