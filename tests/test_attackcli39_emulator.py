"""``drivestage emulator`` given hostile options (attackcli39): each refusal one line, exit 2.

- ``--data-dir ""`` (``--data-dir "$DIR"``, the variable unset) ended in ``TypeError:
  expected str, bytes or os.PathLike object, not NoneType``, a traceback.
- ``--host ""`` bound every interface of the machine (the socket's empty address), an
  emulator that takes any token open to the network, and printed ``http://:PORT/``.
- ``--host 192.0.2.1`` (an address of no interface here) said ``Choose another --port``.
"""
from __future__ import annotations

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.mark.parametrize("args, line", [
    (["--data-dir", ""], "Error: --data-dir is empty (an unset variable?); give a folder to "
                         "keep the emulator's files in, or leave --data-dir out for a temporary "
                         "one"),
    (["--host", ""], "Error: --host is empty (an unset variable?); give the address to listen "
                     "on, e.g. 127.0.0.1 (0.0.0.0 for every interface)"),
    # (with a token: without one, any address not loopback is refused first, attackemu45)
    (["--host", "192.0.2.1", "--token", "t"],
     "Error: cannot listen on 192.0.2.1:0: Cannot assign requested address; give --host an "
     "address of this machine, e.g. 127.0.0.1"),
])
def test_a_bad_emulator_option_is_one_line(tmp_path, args, line):
    done = cli_server().run(["emulator", "--port", "0", *args], cwd=str(tmp_path), timeout=30,
                            text=True)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", line + "\n")
    assert list(tmp_path.iterdir()) == []
