"""A forced folder pull keeps the archives' merge order over a path an earlier run left.

After a pull where a.zip left ``ds/s.txt`` (the user's file there) to b.tgz and b.tgz was
refused, a.zip's stamp records its members without that path (``left``). The next pull,
``--force``, told the merge order a.zip's members as its stamp records them, so b.tgz,
whose member list was known first, saw no path shared with a.zip, merged, and a.zip,
extracted again (``--force``), wrote ``ds/s.txt`` over b.tgz's after it: the earlier
archive's bytes stayed, about 1 run in 5 (pullleft33's test in the CI-like run). The paths a
stamp left are told with its members. Here a.zip's download is held until b.tgz has either
waited for it (the order kept: its wait looked at) or been staged before it (lost)."""
from __future__ import annotations

import threading

import _cli
from _archives import a_fixed_zip, a_tgz
from _proxy import Proxy, Reply
from drivestage import stage_order, stamps
from test_pullleft33_own_files import A, B, _members


def test_a_forced_pull_merges_the_later_archive_last_over_a_path_left_before(
        emulator, local_state, fast_retries, tmp_path, monkeypatch):
    a_id = emulator.add_file("F/a.zip", a_fixed_zip(A))
    b_id = emulator.add_file("F/b.tgz", a_tgz(B))
    dest = tmp_path / "data"
    mine = dest / "F/ds/s.txt"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own notes\n")
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x")
    assert code == 1, err                         # b.tgz refused over the user's file
    assert stamps.own(str(dest / "F"), "a.zip", a_id).get("left") == ["ds/s.txt"]

    waited = threading.Event()
    real = stage_order.MergeOrder._waiting_for

    def waiting_for(self, index: int) -> list:   # (looked at, not changed)
        out = real(self, index)
        if out and self._names[index][0].endswith("b.tgz"):
            waited.set()
        return out
    monkeypatch.setattr(stage_order.MergeOrder, "_waiting_for", waiting_for)

    def b_staged() -> bool:
        stamp = stamps.own(str(dest / "F"), "b.tgz", b_id)
        return bool(stamp and stamp.get("extracted"))

    def hold(status: int, headers: dict, body: bytes) -> Reply:
        for _ in range(6000):   # (60 s at most: one of the two comes at once)
            if waited.wait(0.01) or b_staged():
                break
        return Reply(status, headers, [body])

    with Proxy(emulator.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        proxy.on("GET", rf"/files/{a_id}\?.*alt=media", hold)
        code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "--force")
    assert code == 0, err
    assert _members(dest / "F") == {**A, **B}     # b.tgz's bytes at the shared path
    assert waited.is_set()
