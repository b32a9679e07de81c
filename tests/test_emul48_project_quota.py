"""Drive's per-project quota, modelled (emul48): the "Usage limits" page sets 1,000,000
quota units per minute per Cloud project, every user of it together, beside 325,000 per
user; the "Resolve errors" guide answers the project's with ``403 rateLimitExceeded`` "Rate
Limit Exceeded" (domain ``usageLimits``). The emulator counted each token alone, so machines
that each log in through one OAuth client (two trainers, a pull on several runtimes) never
met the limit they share on Drive. drivestage must retry that answer as the per-minute
limit it is, not take it for the daily upload cap or a permission."""
from __future__ import annotations

import http.client
import json

from _cli import run
from _messages import error_line

GUIDE = {"error": {"errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded",
                               "message": "Rate Limit Exceeded"}],
                   "code": 403, "message": "Rate Limit Exceeded"}}


def _about(emulator, token: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        conn.request("GET", "/drive/v2/about", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_the_projects_minute_counts_every_token(emulator):
    # about.get costs 5 units: 4 calls fill a project minute of 20, whoever makes them.
    emulator.set_api_quota(15, project_units_per_minute=20)
    assert [_about(emulator, t)[0] for t in ("alice", "bob", "alice", "carol")] == [200] * 4
    assert _about(emulator, "dave") == (403, GUIDE)
    assert _about(emulator, "alice") == (403, GUIDE)   # under her own 15 still
    # A refusal charges nothing; each user's own limit is still theirs, and said first.
    assert emulator.quota_units() == 20
    assert emulator.api_quota.describe()["project_units_per_minute"] == 20
    emulator.set_api_quota(10, project_units_per_minute=1_000)
    assert [_about(emulator, "alice")[0] for _ in range(3)] == [200, 200, 403]
    assert _about(emulator, "alice")[1]["error"]["errors"][0]["reason"] == \
        "userRateLimitExceeded"
    assert _about(emulator, "bob")[0] == 200
    emulator.set_api_quota(None)
    assert emulator.api_quota.describe()["project_units_per_minute"] is None
    assert [_about(emulator, "alice")[0] for _ in range(5)] == [200] * 5


def test_drivestage_retries_the_projects_limit(emulator, drive_env, local_state, monkeypatch):
    """Another machine of the project spent its minute: ``ls`` retries (each attempt one
    403), then says it is a rate limit; not the daily upload cap, not a permission."""
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    emulator.add_file("data/a.zip", b"zip")
    emulator.set_api_quota(None, project_units_per_minute=10)
    assert [_about(emulator, "other-machine")[0] for _ in range(2)] == [200, 200]
    code, _, err = run("ls", "drive:data")
    assert code == 1, err
    line = error_line(err)
    assert line == "Error: list drive: (the top of My Drive): still failing after 3 attempts " \
        "(403 rateLimitExceeded: Rate Limit Exceeded); try again later", line
    refused = [r for r in emulator.requests if r.status == 403]
    assert len(refused) == 3, [(r.method, r.path) for r in emulator.requests]
