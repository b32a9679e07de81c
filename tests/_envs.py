"""The ``env`` fixtures most test modules share: drivestage's local state in the test's
tmp_path (conftest's ``local_state``), the commands pointed at the emulator (``drive_env``).
A module takes one by importing it (``from _envs import env  # noqa: F401``, or another
below by its own name): pytest finds a fixture by its name among the module's attributes,
and each here is named ``env``, standing in for conftest's ``env``, which sets the local
state alone (the fixture ``store`` takes ``env`` too). A module takes one of them only."""
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


@pytest.fixture(name="env")
def env_emulator(emulator, local_state, drive_env):
    """``env`` as the emulator itself: the local state, the commands pointed at it, and the
    emulator returned (the tests add files to it through ``env``)."""
    return emulator


@pytest.fixture(name="env")
def env_user_lines(local_state, drive_env, fast_retries, monkeypatch):
    """``env`` (``_envs.env``'s) with DRIVESTAGE_DEBUG unset: the lines a user sees, not a
    developer's tracebacks, whatever the shell running the tests set."""
    monkeypatch.delenv("DRIVESTAGE_DEBUG", raising=False)
    return local_state


@pytest.fixture(name="env")
def env_user_lines_two_tries(local_state, drive_env, fast_retries, monkeypatch):
    """``env_user_lines`` that gives up after 2 attempts (a failing request's message comes
    after one retry)."""
    monkeypatch.delenv("DRIVESTAGE_DEBUG", raising=False)
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    return local_state


@pytest.fixture(name="env")
def env_for_children(local_state, tmp_path, drive_env):
    """``env`` as the variables a command started in a child process needs (with
    ``os.environ``): the emulator's, and the local state's (its retry waits of 10 ms)."""
    return {**drive_env, "DRIVESTAGE_STATE_DIR": str(tmp_path / "state"),
            "DRIVESTAGE_RETRY_BASE": "0.01"}


@pytest.fixture
def env_drive(local_state, drive_env):
    """The local state and the commands pointed at the emulator, under a name of its own (in
    a module whose other tests go through a proxy and take ``liar_env``)."""
    return local_state


@pytest.fixture
def penv(proxy, local_state, monkeypatch):
    """The commands pointed at conftest's ``proxy`` (a :class:`_proxy.Proxy` in front of the
    emulator), retry waits of a millisecond."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.001")
