"""attack52: ``--credentials "$KEY"`` with the variable unset.

README lists where credentials are looked for, ``--credentials FILE`` first. An empty
``--credentials`` was taken as not given, and the next source was used without a word: a
saved personal token, Colab's login, or here the emulator's ``DRIVESTAGE_TOKEN``; a CI job
meant to act as its service account listed, pulled and pushed as another account, exit 0.
Now a usage error, exit 2, before anything is asked of Drive."""
from __future__ import annotations

import pytest

from _cli import run

LINE = ("Error: --credentials is empty (an unset variable?); give the key or token file, or "
        "leave --credentials out to use the next credentials in README's order")


@pytest.mark.parametrize("args", [
    ("ls", "drive:"),
    ("quota",),
    ("push", "{src}", "drive:runs/x"),
])
def test_an_empty_credentials_option_is_refused(emulator, drive_env, local_state, tmp_path, args):
    """On main 8704ac72 each ran with DRIVESTAGE_TOKEN, exit 0 (push: its files sent)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    code, out, err = run(*(a.format(src=src) for a in args), "--credentials", "")
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == LINE
    assert [r["title"] for r in emulator.store.all_files()
            if not emulator.store.is_folder(r)] == []   # (nothing sent)
