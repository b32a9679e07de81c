"""The ``env`` fixtures most test modules share: drivestage's local state in the test's
tmp_path (conftest's ``local_state``), the commands pointed at the emulator (``drive_env``).
A module takes one by importing it (``from _envs import env  # noqa: F401``): pytest finds
a fixture by its name among the module's attributes, and it stands in for conftest's
``env``, which sets the local state alone (the fixture ``store`` takes ``env`` too)."""
from __future__ import annotations

import pytest


@pytest.fixture
def env(local_state, drive_env, fast_retries):
    """The local state, the emulator, and retry waits of a millisecond without jitter (set
    up in that order)."""
    return local_state


@pytest.fixture(name="env")
def env_local_retries(local_state, drive_env):
    """``env`` with ``local_state``'s retry waits (10 to 50 ms, with jitter): imported by this
    name, it is still the fixture ``env``."""
    return local_state
