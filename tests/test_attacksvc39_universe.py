"""``GOOGLE_CLOUD_UNIVERSE_DOMAIN`` (google-cloud's setting for a sovereign cloud, read by
googleapiclient as it builds a service) set in drivestage's environment. Every request was
refused by googleapiclient before it was sent (its check of the credentials' universe),
and the message blamed the server: "the server's answer is not what Drive sends … is
--api-root / DRIVESTAGE_API_ROOT a Drive API?" (nothing had been sent). An emulator's API
root is no universe's: it works with the setting. Google's own, with credentials of
another universe: one line at connect that names the setting (no request sent)."""
from __future__ import annotations
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

import pytest

from drivestage.drive import connect
from drivestage.errors import UsageError


def test_an_emulator_works_whatever_universe_the_environment_names(emulator, env,
                                                                    monkeypatch):
    emulator.add_file("f/a.bin", b"abc")
    for universe in ("example.com", "other.example", "googleapis.com"):
        monkeypatch.setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", universe)
        store = connect(api_root=emulator.url, token="t")
        entry = store.resolve("f/a.bin")
        assert store.fetch_range(entry, 0, 3) == b"abc"


def test_google_with_credentials_of_another_universe_is_one_line_at_connect(env, monkeypatch):
    monkeypatch.delenv("DRIVESTAGE_API_ROOT", raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", "example.com")
    with pytest.raises(UsageError) as caught:
        connect(token="t")
    assert str(caught.value) == (
        "GOOGLE_CLOUD_UNIVERSE_DOMAIN=example.com names another universe than the credentials "
        "from the given token (googleapis.com): Drive answers in googleapis.com; unset "
        "GOOGLE_CLOUD_UNIVERSE_DOMAIN, or use credentials made in example.com")
