"""A folder of one big archive and many small ones named after it (`--chunk-size 64KiB`):
chunkdet35 fetches the small ones after the big one, so that archives start in tree order.
They must still go `--jobs` at a time, never one by one, and never wait for good; each file
is fetched once (attackorder35: held up; counted from the emulator's request log)."""
from __future__ import annotations

import _cli
from test_chunkdet35_order import BIG, _zip

N = 60


def _most_at_once(records) -> int:
    edges = sorted([(r.time, 1) for r in records] + [(r.time + r.duration, -1)
                                                       for r in records])
    now = most = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_small_archives_after_a_big_one_go_jobs_at_a_time(emulator, local_state,
                                                          monkeypatch, tmp_path):
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    big = emulator.add_file("F/a_big.zip", _zip({"big/x": BIG, "ds/x": b"big"}))
    for i in range(N):
        emulator.add_file(f"F/s{i:03d}.zip", _zip({"ds/x": b"%d" % i, f"ds/{i}": b"1"}))
    # Each download answered 0.1 s late: fetches that overlap show, whatever the load.
    emulator.faults.latency(0.1, method="GET", path=r"alt=media")
    emulator.clear_requests()
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", "--chunk-size", "64KiB",
                            "-j", "4")
    assert code == 0, err
    media = [r for r in emulator.requests if r.query.get("alt") == "media"]
    small = [r for r in media if big not in r.path]
    assert len(small) == len({r.path for r in small}) == N        # each small one once
    assert len(media) - N <= 4         # the big one in 64 KiB ranges (200 KiB)
    # and one listing (+ the folder's), and the one that looks again at the end (stage_recheck)
    assert len(emulator.requests) - len(media) <= 3
    big_done = max(r.time + r.duration for r in media if big in r.path)
    assert all(r.time >= big_done for r in small)   # after the big one, in tree order
    assert 2 <= _most_at_once(small) <= 4           # several at once, never over --jobs
    assert (dest / "F/ds/x").read_bytes() == b"%d" % (N - 1)   # the last by name holds
    emulator.clear_requests()
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "--chunk-size", "64KiB")
    assert code == 0 and f"{N + 1} files ({N + 1} already staged)" in err, err
    assert not [r for r in emulator.requests if r.query.get("alt") == "media"]
