"""docs/troubleshooting.md, "Drive storage quota": each message made to happen (see
tests/_messages.py).

The commands run in this process against the emulator, which refuses what Drive refuses: a
quota it keeps (``quota_bytes``), a service account's missing storage, item limits, flagged
files, download and upload caps; a fault rule stands in for Drive's answer where the emulator
has no model of the cause (a folder refused for a full quota, a per-minute limit that never
lifts). A local folder as DEST fills up for real: a small tmpfs (tests/_tmpfs.py), and a
Drive mount whose Drive is full is a FUSE file system that refuses writes with EIO
(tests/_drivemount.py).
"""
from __future__ import annotations

import logging
import os

from click.testing import CliRunner

from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line as error
from _messages import log_text, renders, shown
from _drivemount import drive_mount  # noqa: F401 (a fixture)
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from drivestage.cli import cli


def run(*args: str) -> tuple[int, str]:
    """``drivestage ARGS`` in this process: its exit code and its stderr."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def logs(tmp_path, **files: bytes) -> str:
    """A run folder holding ``files`` (name -> bytes)."""
    src = tmp_path / "logs"
    src.mkdir(exist_ok=True)
    for name, data in files.items():
        (src / name).write_bytes(data)
    return str(src)


def live(emu, folder: str) -> list[str]:
    """Names of the live (untrashed) files directly in ``folder`` on the emulator."""
    top = emu.find(folder)
    if top is None:
        return []
    return sorted(f["title"] for f in emu.files() if not f["labels"]["trashed"]
                  and any(p["id"] == top["id"] for p in f.get("parents") or []))


# --------------------------------------------------------------------------- storage

@renders("service accounts have no Drive storage of their own")
def test_a_service_account_pushes_into_my_drive(emulator, env, tmp_path):
    emulator.set_service_account(True, token="test-token")
    code, err = run("push", logs(tmp_path, **{"a.pt": b"weights"}), "drive:Models/run")
    assert code == 1
    line = error(err)
    assert "drive:shared/<drive>/..." in line
    shown("service accounts have no Drive storage of their own", line)
    assert live(emulator, "Models/run") == []


@renders("Not enough Drive storage for")
def test_the_files_do_not_fit_into_the_quota(emulator_factory, env, tmp_path, monkeypatch):
    from drivestage.drive import connect

    emu = emulator_factory(quota_bytes=10_000)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emu.url)
    emu.add_file("Models/run/old.pt", os.urandom(4000))
    emu.add_file("trashed.bin", os.urandom(2000))
    store = connect(api_root=emu.url, token="test-token")
    store.delete(store.resolve("trashed.bin"), trash=True)  # still counts
    src = logs(tmp_path, **{"a.pt": os.urandom(3000), "b.pt": os.urandom(3000)})
    emu.clear_requests()
    code, err = run("push", src, "drive:Models/run")
    assert code == 1
    line = error(err)
    assert "Not enough Drive storage for 2 file(s) into drive:Models/run: needed 5.9 KiB, " \
           "free 3.9 KiB, in trash 2.0 KiB. Empty the Drive trash" in line
    shown("Not enough Drive storage for", line)
    assert not [r for r in emu.requests if r.path.startswith("/upload/")]  # not a byte sent
    assert live(emu, "Models/run") == ["old.pt"]


@renders("Not enough Drive storage for")
def test_drive_refuses_an_upload_when_the_quota_filled_meanwhile(emulator_factory, env,
                                                                 tmp_path, monkeypatch):
    from _proxy import Proxy, Reply

    emu = emulator_factory(quota_bytes=10_000)
    src = logs(tmp_path, **{"a.pt": os.urandom(3000), "b.pt": os.urandom(3000)})

    def someone_else_uploads(status: int, headers: dict, body: bytes) -> Reply:
        # Once a.pt is stored, another program fills the quota (the pre-check has passed).
        emu.add_file("other/big.bin", os.urandom(5000))
        return Reply(status, headers, [body])

    with Proxy(emu.url) as proxy:
        proxy.on("PUT", r"upload_id=", someone_else_uploads, times=1)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        code, err = run("push", src, "drive:Models/run", "--jobs", "1")
    assert code == 1
    line = error(err)
    assert "b.pt -> b.pt: needed 2.9 KiB, free 2.0 KiB, in trash 0 B" in line
    shown("Not enough Drive storage for", line)
    assert live(emu, "Models/run") == ["a.pt"]  # what was sent before stays


@renders("not enough Drive space for … pruning first")
def test_the_policy_prunes_before_the_uploads(emulator_factory, env, tmp_path, caplog):
    from drivestage.drive import connect
    from drivestage.retention_policy import RetentionPolicy
    from drivestage.upload_tree import push

    emu = emulator_factory(quota_bytes=70_000)
    store = connect(api_root=emu.url, token="test-token")
    src = tmp_path / "logs"
    src.mkdir()
    policy = RetentionPolicy(keep_last=2)
    for epoch in (1, 2):
        (src / f"epoch_{epoch:03d}.pt").write_bytes(os.urandom(30_000))
    caplog.set_level(logging.WARNING, logger="drivestage")
    push(str(src), "Models/run", policy, store=store)
    assert not caplog.records  # two checkpoints fit: nothing pruned early
    (src / "epoch_003.pt").write_bytes(os.urandom(30_000))
    result = push(str(src), "Models/run", policy, store=store)
    text = log_text(caplog.records)
    assert len(caplog.records) == 1
    assert "(29.3 KiB needed, 9.8 KiB free): pruning first" in text, text
    shown("not enough Drive space for … pruning first", text)
    assert [d.name for d in result.pruned] == ["epoch_001.pt"]
    assert live(emu, "Models/run") == ["epoch_002.pt", "epoch_003.pt"]


@renders("the Drive storage quota is full (")
def test_drive_refuses_a_folder_for_a_full_quota(emulator, env, tmp_path):
    # Drive's answer to files.insert of a folder once the quota is full; the pre-check of
    # the upload never ran (the folder comes first).
    emulator.faults.inject("POST", r"^/drive/v2/files\?", reason="storageQuotaExceeded")
    code, err = run("push", logs(tmp_path, **{"a.pt": b"weights"}), "drive:Models/run")
    assert code == 1
    line = error(err)
    assert line.startswith("Error: create folder drive:Models")
    assert "empty the trash: it counts toward the quota" in line
    shown("the Drive storage quota is full (", line)
    assert emulator.find("Models") is None


# --------------------------------------------------------------------------- item limits

@renders("the shared drive holds as many items as Drive allows")
def test_a_full_shared_drive(emulator, env, tmp_path):
    team = emulator.add_shared_drive("Team", item_limit=2)
    emulator.add_file("run/old.pt", b"o", drive_id=team)
    code, err = run("push", logs(tmp_path, **{"new.pt": b"n"}), "drive:shared/Team/run")
    assert code == 1
    line = error(err)
    assert "(HTTP 403 teamDriveFileLimitExceeded" in line
    shown("the shared drive holds as many items as Drive allows", line)
    assert emulator.find("run/new.pt", drive_id=team) is None


@renders("the folder holds as many items as Drive allows in one folder")
def test_a_full_folder(emulator, env, tmp_path):
    folder = emulator.add_folder("runs")
    emulator.add_file("runs/a.pt", b"a")
    emulator.set_child_limit(folder, 1)
    code, err = run("push", logs(tmp_path, **{"a.pt": b"a", "b.pt": b"b"}), "drive:runs")
    assert code == 1
    line = error(err)
    assert "(HTTP 403 numChildrenInNonRootLimitExceeded" in line
    shown("the folder holds as many items as Drive allows in one folder", line)
    assert live(emulator, "runs") == ["a.pt"]


@renders("the shared drive's folders would nest deeper than Drive allows")
def test_a_folder_too_deep_in_a_shared_drive(emulator, env, tmp_path):
    team = emulator.add_shared_drive("Team")
    deep = "/".join(["d"] * 100)            # the deepest a folder may be
    emulator.add_folder(deep, drive_id=team)
    code, err = run("push", logs(tmp_path, **{"a.pt": b"a"}), f"drive:shared/Team/{deep}/run")
    assert code == 1
    line = error(err)
    assert "(HTTP 403 teamDriveHierarchyTooDeep: The shared drive hierarchy depth will " \
        "exceed the limit.)" in line
    shown("the shared drive's folders would nest deeper than Drive allows", line)
    assert emulator.find(f"{deep}/run", drive_id=team) is None
    # One level less is still allowed.
    code, err = run("push", logs(tmp_path, **{"a.pt": b"a"}),
                    f"drive:shared/Team/{deep.rsplit('/', 1)[0]}/run")
    assert code == 0, err


# --------------------------------------------------------------------------- retention budget

@renders("the retention budget of … cannot hold … what the policy keeps")
def test_max_bytes_below_what_the_policy_keeps(emulator, env, tmp_path):
    src = logs(tmp_path, **{"epoch_001.pt": os.urandom(2000), "epoch_002.pt": os.urandom(2000)})
    # The newest checkpoint and a protected one: the budget may delete neither.
    code, err = run("push", src, "drive:Models/run", "--keep-last", "2", "--max-bytes", "3KB",
                    "--protect", "epoch_001.pt")
    assert code == 1
    line = error(err)
    assert "the retention budget of 2.9 KiB cannot hold what the policy keeps (3.9 KiB)" in line
    shown("the retention budget of … cannot hold … what the policy keeps", line)
    assert live(emulator, "Models/run") == []


# --------------------------------------------------------------------------- a local DEST

@renders("no space left for … in …")
def test_a_local_dest_fills_up(env, tmp_path, small_disk):
    # Files of a few bytes pass the byte count of the quota check, but each takes a page of
    # the 64 KiB file system: it is full long before the 40th.
    disk = small_disk(64 * 1024)
    src = logs(tmp_path, **{f"f{i:02d}.txt": b"x" for i in range(40)})
    code, err = run("push", src, str(disk / "Models" / "run"))
    assert code == 1
    line = error(err)
    assert "bytes free; free some space (empty the trash too) or prune" in line
    shown("no space left for … in …", line)
    assert not [n for n in os.listdir(disk / "Models" / "run") if n.startswith(".")
                and n != ".drivestage"]  # no half-written temporary file left


@renders("I/O error writing")
def test_pushing_into_a_drive_mount_whose_drive_is_full(env, tmp_path, drive_mount):
    dest = drive_mount.point / "MyDrive" / "logs"
    code, err = run("push", logs(tmp_path, **{"epoch_001.pt": os.urandom(3000)}), str(dest))
    assert code == 1
    line = error(err)
    assert f"I/O error writing {dest / 'epoch_001.pt'} (Input/output error); on a Google " \
           "Drive mount this usually means the Drive storage quota is full" in line
    shown("I/O error writing", line)
    assert drive_mount.writes_refused >= 1
    assert os.listdir(dest) == []  # the temporary file was removed


# --------------------------------------------------------------------------- downloads

@renders("Drive refuses to serve this file: it was downloaded too often")
def test_a_file_downloaded_too_often(emulator, env, tmp_path):
    file_id = emulator.add_file("data/popular.zip", os.urandom(1000))
    emulator.limit_downloads(file_id, 0)
    code, err = run("pull", "drive:data/popular.zip", str(tmp_path / "d"))
    assert code == 1
    line = error(err)
    assert "(HTTP 403 downloadQuotaExceeded" in line and "Make your own copy" in line
    shown("Drive refuses to serve this file: it was downloaded too often", line)
    assert emulator.api_calls("media.download") == 1  # not retried
    assert not (tmp_path / "d" / "popular.zip").exists()


@renders("Drive flagged this file as malware or spam and will not serve it")
def test_a_flagged_file(emulator, env, tmp_path):
    emulator.add_file("data/tool.zip", b"flagged bytes", abusive=True)
    code, err = run("pull", "drive:data/tool.zip", str(tmp_path / "d"))
    assert code == 1
    line = error(err)
    assert "pull again with --acknowledge-abuse" in line
    shown("Drive flagged this file as malware or spam and will not serve it", line)
    assert not (tmp_path / "d" / "tool.zip").exists()


@renders("Drive flagged this file as malware or spam and refused")
def test_a_flagged_file_of_someone_else_with_acknowledge_abuse(emulator, env, tmp_path):
    file_id = emulator.add_file("x/tool.zip", b"flagged", owner="teacher@school.edu",
                                shared_with_me=True, abusive=True)
    code, err = run("pull", f"drive:id:{file_id}", str(tmp_path / "d"), "--acknowledge-abuse")
    assert code == 1
    line = error(err)
    assert "refused --acknowledge-abuse (HTTP 403 cannotDownloadAbusiveFile): Drive honours " \
           "it only for the file's owner or a Manager of its shared drive" in line
    shown("Drive flagged this file as malware or spam and refused", line)


# --------------------------------------------------------------------------- upload caps

@renders("this account has reached Drive's daily upload cap")
def test_the_daily_upload_cap(emulator, env, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "8")
    emulator.set_api_quota(None, upload_bytes_per_day=1000)
    code, err = run("push", logs(tmp_path, **{"a.pt": os.urandom(1500)}), "drive:Models/run")
    assert code == 1
    line = error(err)
    assert "Drive answered 'User rate limit exceeded.' (HTTP 403 userRateLimitExceeded)" in line
    shown("this account has reached Drive's daily upload cap", line)
    assert len([r for r in emulator.requests if r.status == 403]) == 1  # not retried


@renders("Drive keeps answering")
def test_a_rate_limit_that_outlives_every_retry_of_an_upload(emulator, env, tmp_path,
                                                             monkeypatch):
    # Drive's per-minute spelling ("User Rate Limit Exceeded"), retried, again and again.
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    emulator.faults.inject("POST", r"uploadType=resumable", reason="userRateLimitExceeded",
                           times=None)
    code, err = run("push", logs(tmp_path, **{"a.pt": os.urandom(1500)}), "drive:Models/run")
    assert code == 1
    line = error(err)
    assert "Drive keeps answering 'User Rate Limit Exceeded'" in line
    assert "usually Drive's daily upload cap (about 750 GB per user per day)" in line
    shown("Drive keeps answering", line)
    assert len([r for r in emulator.requests if r.status == 403]) == 3  # every attempt used
