"""CLI commands: data (registered on the trainer group)."""
from __future__ import annotations

from trainer.cli import cli  # noqa: F401
