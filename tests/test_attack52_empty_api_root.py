"""attack52: ``--api-root "$EMULATOR"`` with the variable unset.

An explicit empty ``--api-root`` was read as Google's own Drive, over the
``DRIVESTAGE_API_ROOT`` the environment sets to an emulator: a test script's pull, push or
prune would go to the user's real Drive with their saved or Colab login (here, with no Google
credentials, it ended in ``no Google Drive credentials found``, exit 1, a line that hid the
cause). Now a usage error, exit 2. An empty ``DRIVESTAGE_API_ROOT`` stays as unset."""
from __future__ import annotations

import pytest

from _cli import run

LINE = ("Error: --api-root is empty (an unset variable?); give the Drive API address (an "
        "emulator's: http://127.0.0.1:PORT/), or leave --api-root out for Google's")


@pytest.mark.parametrize("args", [("quota",), ("ls", "drive:"), ("prune", "drive:x",
                                                                  "--keep-last", "1")])
def test_an_empty_api_root_is_refused(emulator, drive_env, local_state, args):
    """On main 8704ac72: Google's Drive asked, ``no Google Drive credentials found``, exit 1."""
    code, out, err = run(*args, "--api-root", "")
    assert (code, out, err.splitlines()[-1]) == (2, "", LINE)
