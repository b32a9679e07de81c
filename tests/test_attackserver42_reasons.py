"""403 reasons real Drive sends that no sharing setting lifts, as a hostile (or merely real)
server sends them: each was typed "permission denied ... Check that this account can access
the file (sharing settings, shared drive membership)", which sent users to the wrong place.
Each is now one line that names what happened and what to do, exit 1, and is not retried."""
from __future__ import annotations

from _cli import run
from _messages import error_line


def _pull_refused(emulator, tmp_path, reason: str) -> str:
    """``pull`` of one file whose download Drive refuses with ``reason``: its Error line,
    after checking exit 1, nothing written, one refusal (no retry)."""
    emulator.add_file("data/f.bin", b"x" * 100)
    emulator.faults.inject("GET", r"alt=media", status=403, reason=reason, times=None)
    code, _, err = run("pull", "drive:data/f.bin", str(tmp_path / "out"))
    assert code == 1, err
    assert not (tmp_path / "out" / "f.bin").exists()
    assert sum(1 for r in emulator.requests if r.status == 403) == 1
    line = error_line(err)
    assert "sharing settings" not in line and "permission denied" not in line, line
    return line


def test_a_request_drive_took_for_one_without_credentials(emulator, drive_env, local_state,
                                                          tmp_path):
    """dailyLimitExceededUnreg: the token never reached Drive (a proxy that strips
    Authorization, an empty token): log in again, not sharing."""
    line = _pull_refused(emulator, tmp_path, "dailyLimitExceededUnreg")
    assert "Drive took the request for one without credentials (HTTP 403 " \
        "dailyLimitExceededUnreg: Daily Limit for Unauthenticated Use Exceeded." in line, line
    assert "drivestage auth login" in line


def test_the_sharing_limit_is_not_a_permission(emulator, drive_env, local_state, tmp_path):
    """sharingRateLimitExceeded: drivestage shares nothing, yet Drive counts the account's
    sharing elsewhere; said to be that limit, to wait for."""
    line = _pull_refused(emulator, tmp_path, "sharingRateLimitExceeded")
    assert "Drive refused: this account reached Drive's limit on sharing (HTTP 403 " \
        "sharingRateLimitExceeded: Rate Limit Exceeded)" in line, line   # (Drive's guide)
    assert "Wait and run the command again later" in line


def test_an_item_drive_will_only_export(emulator, drive_env, local_state, tmp_path):
    """fileNotDownloadable for an item listed with bytes: it says so, and how to get it."""
    line = _pull_refused(emulator, tmp_path, "fileNotDownloadable")
    assert "Drive says this item has no binary content to download (HTTP 403 " \
        "fileNotDownloadable: Only files with binary content can be downloaded." in line, line
    assert "--exclude" in line


#: What Drive says to gcloud's Application Default Credentials of a user without a quota
#: project (agno-agi/agno pull request 4658): the same reason, another remedy.
ADC_WITHOUT_PROJECT = (
    "Your application is authenticating by using local Application Default Credentials. The "
    "drive.googleapis.com API requires a quota project, which is not set by default. To learn "
    "how to set your quota project, see https://cloud.google.com/docs/authentication/"
    "adc-troubleshooting/user-creds .")


def test_credentials_without_a_quota_project(emulator, drive_env, local_state):
    """accessNotConfigured for credentials that name no project: set one, not "enable the
    API" (which project?) nor the sharing settings."""
    emulator.faults.inject(path=r"/files", reason="accessNotConfigured", times=None,
                           message=ADC_WITHOUT_PROJECT)
    code, _, err = run("ls", "drive:")
    assert code == 1, err
    line = error_line(err)
    assert "Drive needs a Google Cloud project to count these credentials' requests against, " \
        f"and they name none (HTTP 403 accessNotConfigured: {ADC_WITHOUT_PROJECT})" in line, line
    assert "`gcloud auth application-default set-quota-project PROJECT`" in line
    assert "has not enabled" not in line and "sharing" not in line
    assert sum(1 for r in emulator.requests if r.status == 403) == 1


def test_the_sharing_limit_stops_a_push_at_once(emulator, drive_env, local_state, tmp_path):
    """The sharing limit is the account's: every upload is refused alike, so the push starts
    no other once one is (it asked for each of 20 files, each refused, before)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i:02d}.bin").write_bytes(b"%d" % i)
    emulator.faults.inject(None, r"/upload/", reason="sharingRateLimitExceeded", times=None)
    before = len(emulator.requests)
    code, _, err = run("push", str(src), "drive:D", "-j", "1")
    assert code == 1, err
    assert sum(1 for r in emulator.requests[before:] if "/upload/" in r.path) == 1
    assert "19 files not sent: Drive kept failing; the next push sends them" in err
    assert "Drive refused: this account reached Drive's limit on sharing (HTTP 403 " \
        "sharingRateLimitExceeded" in error_line(err)
