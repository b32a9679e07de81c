"""Messages fidelity24 added, made to happen (see tests/_messages.py)."""
from __future__ import annotations

import _cli
from _envs import env  # noqa: F401  (a fixture)
from _messages import renders, shown


@renders("Drive rejected its page token … times")
def test_a_page_token_rejected_at_every_restart(emulator, env, tmp_path):
    for i in range(3):
        emulator.add_file(f"Data/imgs/{i}.jpg", b"x" * (i + 1))
    emulator.faults.short_pages(1)
    emulator.faults.expire_page_tokens(None)
    code, _, err = _cli.run("pull", "drive:Data/imgs", str(tmp_path), "-q")
    assert code == 1
    shown("Drive rejected its page token … times", err)
    assert "Drive rejected its page token 4 times (HTTP 400 invalid)" in err
    assert not (tmp_path / "imgs").exists() or not any((tmp_path / "imgs").glob("*.jpg"))
