"""attack52: ``drivestage emulator --token "$TOKEN"`` with the variable unset, or a token no
client can send.

The help says ``--token`` makes the emulator accept only that bearer token. ``--token ""``
(and a token holding a line end) started it and printed its address as usual, and every
request was then refused with 401 ``Login Required`` (no client sends an empty bearer or a
header with a line end in it): the user's pipeline failed against an emulator said to serve.
With ``--host 0.0.0.0``, ``--token ""`` also passed the check that an address other machines
reach needs a token. Now each is one line, exit 2, and no emulator starts."""
from __future__ import annotations

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.mark.parametrize("args, line", [
    (["--token", ""], "Error: --token is empty (an unset variable?); give the bearer token "
                      "clients send, or leave --token out to accept any"),
    (["--token", "", "--host", "0.0.0.0"],
     "Error: --token is empty (an unset variable?); give the bearer token clients send, or "
     "leave --token out to accept any"),
    (["--token", "abc\n"], "Error: --token holds a control character (a line end?), which no "
                           "client can send in a header; give the bearer token clients send"),
])
def test_a_token_no_client_can_send_is_refused(tmp_path, args, line):
    """On main 8704ac72 each served (until this test's timeout), every request answered 401."""
    done = cli_server().run(["emulator", "--port", "0", "--data-dir", str(tmp_path / "d"),
                             *args], timeout=20, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", line + "\n")
    assert list(tmp_path.iterdir()) == []
