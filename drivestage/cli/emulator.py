"""CLI commands: emulator (registered on the drivestage group)."""
from __future__ import annotations

from drivestage.cli import cli  # noqa: F401
