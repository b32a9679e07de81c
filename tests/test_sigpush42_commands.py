"""Every command ends on SIGTERM and SIGHUP as on a Ctrl-C (exit 143 / 129 and its line),
but those with handlers of their own: ``mirror`` (a final push) and ``emulator`` (a server:
stops cleanly, exit 0); ``auth login`` too since lefts43 (at its prompt as well). A command
added later without :func:`drivestage.cli.options.stops_as_ctrl_c` fails here: killed by a
VM's SIGTERM, it would die without a word (as push did until sigpush42)."""
from __future__ import annotations

import click

from drivestage.cli import cli

#: Commands that take SIGTERM / SIGHUP their own way (see the module doc).
OWN = {"mirror", "emulator"}


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out.update(_commands(cmd, f"{prefix}{name} "))
        else:
            out[f"{prefix}{name}"] = cmd
    return out


def test_every_one_shot_command_takes_the_stop_signals():
    commands = _commands(cli)
    assert OWN <= set(commands)
    left = sorted(name for name, cmd in commands.items()
                  if name not in OWN and not getattr(cmd.callback, "stops_as_ctrl_c", False))
    assert left == []
    assert {"push", "prune", "dedupe", "pull", "runs forget", "auth login"} <= set(commands) - OWN

