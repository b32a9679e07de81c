"""A Drive name typed in another Unicode form (attackcli39): ``café`` written with ``e`` and
a combining accent (NFD: what macOS's file names and some copied text hold) where Drive holds
the composed ``é`` (NFC), or the other way round. The two read the same, Drive's titles are
exact, and the pull said ``not found (no item named 'café.bin' …)`` of a name the user saw
on Drive. The message now says that Drive holds the name in the other form, one more look-up
on the way to the error; nothing is matched in the user's stead (a folder may hold both)."""
from __future__ import annotations

import os
import unicodedata

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.mark.parametrize("on_drive, typed", [("NFC", "NFD"), ("NFD", "NFC")])
def test_a_name_in_the_other_unicode_form_is_named(emulator, drive_env, local_state, tmp_path,
                                                    on_drive, typed):
    held = unicodedata.normalize(on_drive, "caf\u00e9.bin")
    asked = unicodedata.normalize(typed, "caf\u00e9.bin")
    emulator.add_file(f"F/{held}", b"x")
    done = cli_server().run(["pull", "-q", f"drive:F/{asked}", str(tmp_path / "d")],
                            timeout=60, text=True)
    shown = asked.encode("unicode_escape").decode() if typed == "NFD" else asked
    assert (done.returncode, done.stderr) == (1, (
        f"Error: drive:F/{asked} not found (no item named {asked!r} in drive:F; names are "
        f"case-sensitive); Drive holds {held!r}, which reads the same in other Unicode code "
        "points (composed or combining accents): copy the name from `drivestage ls drive:F`\n")), shown
    assert not os.path.exists(tmp_path / "d" / held)
