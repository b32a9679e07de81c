"""Every 403 Drive sends, by its name: the CLI prints one ``Error:`` line with the cause and the
remedy, exits 1, and does not retry what retrying cannot fix. Each failure is produced by the
emulator the way Drive produces it (scopes, quotas, limits, flags), through the real stack."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _envs import env_local_retries  # noqa: F401  (the env fixture)

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def error_line(code, err):
    """The one ``Error:`` line (exit code 1), last on stderr and on a line of its own even
    after a progress bar."""
    assert code == 1, err
    lines = [line for line in err.split("\n") if line.strip()]
    assert lines[-1].startswith("Error: "), err
    assert sum(line.startswith("Error:") for line in lines) == 1 and "Traceback" not in err
    return lines[-1]


def _logs(tmp_path, **files):
    src = tmp_path / "logs"
    src.mkdir(exist_ok=True)
    for name, data in files.items():
        (src / name).write_bytes(data)
    return str(src)


def test_a_token_without_the_drive_scope_says_which_scope(emulator, env):
    emulator.add_file("data/a.zip", b"zip")
    emulator.set_token_scopes("test-token", [CLOUD_PLATFORM])  # Colab Enterprise's token
    line = error_line(*run("ls", "drive:data")[::2])
    assert "the credentials are valid but may not use Google Drive (HTTP 403 " \
           "insufficientPermissions: Request had insufficient authentication scopes.)" in line
    assert "https://www.googleapis.com/auth/drive)" in line  # from WWW-Authenticate
    assert "Colab Enterprise" in line and "drivestage auth login" in line
    assert len([r for r in emulator.requests if r.status == 403]) == 1  # not retried


def test_a_read_only_token_cannot_push(emulator, env, tmp_path):
    emulator.set_token_scopes("test-token", ["drive.readonly"])
    code, _, err = run("push", _logs(tmp_path, **{"a.pt": b"x"}), "drive:Models/run")
    assert "may not use Google Drive" in error_line(code, err) and "drive.readonly" in err
    assert emulator.find("Models/run/a.pt") is None


def test_daily_limit_of_the_project(emulator, env):
    emulator.add_file("data/a.zip", b"zip")
    emulator.set_api_quota(None, requests_per_day=0)
    line = error_line(*run("ls", "drive:data")[::2])
    assert "has used all its Drive API requests for today (HTTP 403 dailyLimitExceeded: " \
           "Daily Limit Exceeded)" in line
    assert "midnight Pacific time" in line
    assert len(emulator.requests) == 1  # not retried


def test_a_full_shared_drive(emulator, env, tmp_path):
    team = emulator.add_shared_drive("Team", item_limit=2)
    emulator.add_folder("run", drive_id=team)
    emulator.add_file("run/old.pt", b"o", drive_id=team)
    code, _, err = run("push", _logs(tmp_path, **{"new.pt": b"n"}), "drive:shared/Team/run")
    line = error_line(code, err)
    assert "the shared drive holds as many items as Drive allows (500,000, trashed items " \
           "included) (HTTP 403 teamDriveFileLimitExceeded" in line
    assert "empty the shared drive's trash" in line
    assert emulator.find("run/new.pt", drive_id=team) is None


def test_a_full_folder(emulator, env, tmp_path):
    folder = emulator.add_folder("runs")
    emulator.add_file("runs/a.pt", b"a")
    emulator.set_child_limit(folder, 1)
    code, _, err = run("push", _logs(tmp_path, **{"a.pt": b"a", "b.pt": b"b"}), "drive:runs")
    line = error_line(code, err)
    assert "the folder holds as many items as Drive allows in one folder (500,000 files and " \
           "folders) (HTTP 403 numChildrenInNonRootLimitExceeded" in line
    assert "Push into a subfolder" in line


def test_an_abusive_file_needs_acknowledge_abuse_and_the_owner_may(emulator, env, tmp_path):
    emulator.add_file("data/tool.zip", b"flagged bytes", abusive=True)
    dest = tmp_path / "dest"
    line = error_line(*run("pull", "drive:data/tool.zip", str(dest))[::2])
    assert "Drive flagged this file as malware or spam and will not serve it (HTTP 403 " \
           "cannotDownloadAbusiveFile" in line
    assert "pull again with --acknowledge-abuse" in line
    assert not (dest / "tool.zip").exists()
    code, out, err = run("pull", "drive:data/tool.zip", str(dest), "--acknowledge-abuse", "-q")
    assert code == 0, err
    assert (dest / "tool.zip").read_bytes() == b"flagged bytes"
    media = [r for r in emulator.requests if r.query.get("alt") == "media"]
    assert media[-1].query.get("acknowledgeAbuse") == "true"


def test_acknowledge_abuse_refused_for_someone_elses_file(emulator, env, tmp_path):
    file_id = emulator.add_file("x/tool.zip", b"flagged", owner="teacher@school.edu",
                                shared_with_me=True, abusive=True)
    code, _, err = run("pull", f"drive:id:{file_id}", str(tmp_path / "d"), "--acknowledge-abuse")
    line = error_line(code, err)
    assert "refused --acknowledge-abuse (HTTP 403 cannotDownloadAbusiveFile): Drive honours " \
           "it only for the file's owner or a Manager of its shared drive" in line
    code, _, err = run("pull", str(tmp_path), str(tmp_path / "d"), "--acknowledge-abuse")
    assert code == 2 and "--acknowledge-abuse is for files on Google Drive" in err


def test_download_quota_is_not_retried_and_says_make_a_copy(emulator, env, tmp_path):
    file_id = emulator.add_file("data/popular.zip", os.urandom(1000))
    emulator.limit_downloads(file_id, 0)
    code, _, err = run("pull", "drive:data/popular.zip", str(tmp_path / "d"))
    line = error_line(code, err)
    assert "Drive refuses to serve this file: it was downloaded too often recently (HTTP 403 " \
           "downloadQuotaExceeded" in line
    assert "Make your own copy" in line
    assert emulator.api_calls("media.download") == 1
    # stderr is not a terminal here: the bar's last fragment ends its line, Error starts anew.
    assert "popular.zip:" in err and err.endswith("\n" + line + "\n")


def test_storage_quota_exceeded_on_the_upload_itself(emulator, env, tmp_path):
    emulator.faults.inject("POST", r"uploadType=resumable", reason="storageQuotaExceeded")
    code, _, err = run("push", _logs(tmp_path, **{"a.pt": b"x" * 100}), "drive:Models/run")
    line = error_line(code, err)
    assert "Not enough Drive storage for" in line and "needed 100 B" in line


def test_the_daily_upload_cap_stops_at_once(emulator, env, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "8")
    emulator.set_api_quota(None, upload_bytes_per_day=1000)
    code, _, err = run("push", _logs(tmp_path, **{"a.pt": os.urandom(1500)}), "drive:Models/run")
    line = error_line(code, err)
    assert "Drive answered 'User rate limit exceeded.' (HTTP 403 userRateLimitExceeded): this " \
           "account has reached Drive's daily upload cap (750 GB per user per 24 hours)" in line
    refused = [r for r in emulator.requests if r.status == 403]
    assert len(refused) == 1  # not retried for hours


# --------------------------------------------------------------------------- malformed answers

def _json_body(change):
    """A proxy mutation: the emulator's JSON answer, changed by ``change(body) -> body``."""
    import json

    from _proxy import Reply

    def mutate(status, headers, body):
        data = change(json.loads(body)) if isinstance(change, type(mutate)) else change
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(raw))
        return Reply(status, out, [raw])

    return mutate


def _items(field, value):
    def change(body):
        for item in body.get("items", []):
            item[field] = value
        return body
    return change


@pytest.mark.parametrize("change,needle", [
    (_items("fileSize", "lots"), "malformed metadata for item"),
    (_items("id", None), "malformed metadata for item '?' (id None)"),
    (_items("parents", "root"), "(parents 'root')"),
    (lambda body: dict(body, items="not a list"), "the server's answer is not what Drive sends"),
    (b"<html>all good</html>", "the server's answer is not what Drive sends"),
], ids=["size", "no-id", "parents", "items", "html"])
def test_malformed_metadata_is_one_line(emulator, local_state, tmp_path, monkeypatch,
                                        change, needle):
    from _proxy import Proxy

    emulator.add_file("data/a.bin", b"a")
    with Proxy(emulator.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
        proxy.on("GET", r"^/drive/v2/files\?", _json_body(change))
        for args in (("ls", "drive:data"), ("pull", "drive:data/a.bin", str(tmp_path / "d"))):
            line = error_line(*run(*args)[::2])
            assert needle in line and "is --api-root / DRIVESTAGE_API_ROOT a Drive API?" in line
    assert not (tmp_path / "d" / "a.bin").exists()


def test_state_dir_pointing_at_a_file_is_one_line(emulator, drive_env, tmp_path, monkeypatch):
    state = tmp_path / "state-file"
    state.write_text("not a folder")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state))
    for args in (("push", _logs(tmp_path, **{"a.pt": b"a"}), "drive:run"),
                 ("prune", "drive:run", "--keep-last", "1")):
        code, _, err = run(*args)
        assert code == 2
        assert err == (f"Error: drivestage's state folder {state} (DRIVESTAGE_STATE_DIR) is a "
                       "file, or lies under one; point DRIVESTAGE_STATE_DIR at a folder "
                       "(default ~/.cache/drivestage)\n")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state / "sub"))
    assert run("push", str(tmp_path / "logs"), "drive:run")[0] == 2
