"""A checkpoint sidecar on Drive that is not JSON (attackcli39): a prune, a push and
``trainer status`` warned ``ignoring an unreadable checkpoint sidecar: Expecting value: line 1
column 1 (char 0)``, and the user was left to guess which of the run's files it was. The
warning names the sidecar now. The real CLI, forked with its imports done, the emulator."""
from __future__ import annotations


from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


WARNING = ("WARNING drivestage.sidecar: ignoring the unreadable checkpoint sidecar "
           "epoch_001.json (Expecting value: line 1 column 1 (char 0)): it vouches for no "
           "checkpoint\n")


def test_an_unreadable_sidecar_is_named(emulator, drive_env, local_state):
    emulator.add_file("R/epoch_001.pt", b"x" * 100)
    emulator.add_file("R/epoch_001.json", b"garbage{")
    emulator.add_file("R/epoch_002.pt", b"y" * 100)
    done = cli_server().run(["prune", "drive:R", "--keep-last", "1", "-n"], timeout=60,
                            text=True)
    assert (done.returncode, done.stderr) == (0, WARNING + "Dry run: nothing was deleted.\n")
