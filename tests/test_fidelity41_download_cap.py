"""fidelity41: a folder pull under the account's daily download cap (Drive refuses every file
with the per-file quota's answer, 403 downloadQuotaExceeded) stops starting files after
three refusals in a row with none served since, and the rerun once the cap lifts fetches
only what is missing. Files over their own quota among files Drive serves still get the
per-file line, every other file pulled."""
from __future__ import annotations

import threading

from _cli import run
from _proxy import Proxy, Reply


def _folder(emulator, n: int = 8) -> dict[str, str]:
    return {f"f{i:02d}.bin": emulator.add_file(f"F/f{i:02d}.bin", bytes([65 + i]) * 100)
            for i in range(n)}


def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_the_rerun_after_the_cap_lifts_fetches_only_what_is_missing(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    _folder(emulator)
    emulator.set_api_quota(None, download_bytes_per_day=150)
    code, _, err = run("pull", "-j", "1", "drive:F", str(tmp_path / "d"))
    assert code == 1 and "2 staged, 6 not" in err, err
    emulator.set_api_quota(None)            # a new day
    before = len(emulator.requests)
    code, _, err = run("pull", "-j", "1", "drive:F", str(tmp_path / "d"))
    assert code == 0, err
    media = [r for r in emulator.requests[before:] if r.kind == "media.download"]
    assert len(media) == 6
    F = tmp_path / "d" / "F"
    assert _names(F) == [f"f{i:02d}.bin" for i in range(8)]
    assert all((F / f"f{i:02d}.bin").read_bytes() == bytes([65 + i]) * 100 for i in range(8))


def test_files_staged_already_do_not_count_as_served(emulator, local_state, drive_env,
                                                      fast_retries, tmp_path):
    """A rerun while the cap holds: the staged files between the refused ones cost no
    download, so they say nothing of whether Drive serves this account; three refused stop
    the pull all the same."""
    ids = _folder(emulator, 10)
    emulator.limit_downloads(ids["f00.bin"], 0)              # over its own quota
    emulator.set_api_quota(None, download_bytes_per_day=250)  # then f01, f02, f03 come
    code, _, err = run("pull", "-j", "1", "drive:F", str(tmp_path / "d"))
    assert code == 1 and "7 files were not fetched, the rest were" in err, err
    assert _names(tmp_path / "d" / "F") == ["f01.bin", "f02.bin", "f03.bin"]
    before = len(emulator.requests)
    code, _, err = run("pull", "-j", "1", "drive:F", str(tmp_path / "d"))
    assert code == 1 and "3 staged, 7 not (drive:F/f00.bin, drive:F/f04.bin, " \
        "drive:F/f05.bin and 4 more)" in err, err
    media = [r.path.rsplit("/", 1)[-1] for r in emulator.requests[before:]
             if r.kind == "media.download"]
    assert media == [ids["f00.bin"], ids["f04.bin"], ids["f05.bin"]], media


def test_files_over_their_own_quota_between_served_ones_get_the_per_file_line(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    ids = _folder(emulator)
    for name in ("f00.bin", "f02.bin", "f03.bin", "f04.bin"):
        emulator.limit_downloads(ids[name], 0)
    code, _, err = run("pull", "-j", "1", "drive:F", str(tmp_path / "d"))
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: 4 files were not fetched, the rest were: "), line
    assert "daily download cap" in line and "most likely" not in line, line
    assert line.endswith("--exclude 'f00.bin' --exclude 'f02.bin' --exclude 'f03.bin' "
                         "--exclude 'f04.bin'"), line
    assert emulator.api_calls("media.download") == 8
    assert _names(tmp_path / "d" / "F") == ["f01.bin", "f05.bin", "f06.bin", "f07.bin"]


def test_one_file_under_the_cap_says_a_copy_is_refused_too(emulator, local_state, drive_env,
                                                           fast_retries, tmp_path):
    """Drive's answer is the per-file one: a file pull cannot tell the two apart, so its line
    names both, and is not retried."""
    fid = emulator.add_file("data/a.bin", b"a" * 100)
    emulator.set_api_quota(None, download_bytes_per_day=1)
    emulator.add_file("data/warm.bin", b"w")
    code, _, err = run("pull", "drive:data/warm.bin", str(tmp_path / "d"))   # spends it
    assert code == 0, err
    code, _, err = run("pull", "drive:data/a.bin", str(tmp_path / "d"))
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: ") and "(HTTP 403 downloadQuotaExceeded: The download " \
        "quota for this file has been exceeded.)" in line, line
    assert line.endswith("(If Drive refuses every file so, copies too, this account has "
                         "reached its daily download cap, about 10 TB a day: wait "
                         "instead.)"), line
    assert [r.path.rsplit("/", 1)[-1] for r in emulator.requests
            if r.kind == "media.download"].count(fid) == 1


def test_three_popular_files_begun_at_once_stop_no_other_file(emulator, local_state,
                                                              fast_retries, monkeypatch,
                                                              tmp_path):
    """``--jobs 4``: the first four files start together (their refusals are held, through a
    proxy, until the fourth file's bytes come) and three are refused for their own quota.
    Refusals of files started before the first one say nothing of the account: the files
    started after it are asked for, and Drive serves them."""
    ids = _folder(emulator)
    for name in ("f00.bin", "f01.bin", "f02.bin"):
        emulator.limit_downloads(ids[name], 0)
    served, late = threading.Event(), []

    def hold_refusals(status: int, headers: dict, body: bytes) -> Reply:
        if status == 403 and not served.wait(10):
            late.append(status)   # (no fourth download came: the assertion below says so)
        if status in (200, 206):
            served.set()
        return Reply(status, headers, [body])

    with Proxy(emulator.url) as proxy:
        proxy.on("GET", r"alt=media", hold_refusals)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
        code, _, err = run("pull", "-j", "4", "drive:F", str(tmp_path / "d"))
    assert not late
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: 3 files were not fetched, the rest were: "), line
    assert _names(tmp_path / "d" / "F") == [f"f{i:02d}.bin" for i in range(3, 8)]
