"""leasefull42: ``drivestage dedupe`` beside a running ``drivestage mirror`` (no trainer, no
lease). dedupe refused only folders a training run held by its lease claim: a plain mirror
held nothing, so dedupe moved what the newer of two same-named folders held into the oldest
and trashed the newer one while the mirror kept pushing into it by id. A mirror whose
destination is on Drive now holds a claim (a PUBLIC property of that folder, renewed by a
thread, removed when it stops: drivestage.mirror_claim); dedupe refuses a pair it holds, or
a pair inside the folder it holds, in one line (exit 1), nothing moved; once the mirror
stopped, the pair is merged. A claim whose mirror is gone (stale by its own stale_s) holds
nothing.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import os
import re
import time
from typing import Callable

import pytest

from tests.test_guards41_dedupe import _run, _twins
from tests.test_messages_dedupe import live


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")


def _mirror_props(emulator) -> list[str]:
    return sorted(p["key"] for f in emulator.files() for p in emulator.properties_of(f["id"])
                  if p["key"].startswith("drivestage-mirror-"))


def until_claims(emulator, ready: Callable[[list[str]], bool], what: str,
                 bound: float = 30.0) -> list[str]:
    """The mirror claims on Drive once ``ready`` says so of them: a bounded poll of the
    emulator's properties. A claim is written and removed by a thread of its own
    (mirrorclaim43), not within the push's period nor stop()'s wait."""
    deadline = time.monotonic() + bound
    while True:
        found = _mirror_props(emulator)
        if ready(found):
            return found
        assert time.monotonic() < deadline, f"{what}: {found}"
        time.sleep(0.02)


def _ours(emulator) -> set[str]:
    """The mirror claims of this process."""
    return {p["key"] for f in emulator.files() for p in emulator.properties_of(f["id"])
            if p["key"].startswith("drivestage-mirror-")
            and str(p.get("value", "")).split("|")[3:4] == [str(os.getpid())]}


def _mirror(emulator, tmp_path, dest: str):
    """A mirror of a folder with m.txt into ``dest``, started, its first push done and its
    claim on Drive."""
    from drivestage.mirror import Mirror

    src = tmp_path / "src"
    src.mkdir()
    (src / "m.txt").write_bytes(b"m")
    before = _ours(emulator)
    mirror = Mirror(str(src), dest, every=3600).start()
    mirror.flush(60)
    until_claims(emulator, lambda _: bool(_ours(emulator) - before), "the mirror never claimed")
    return mirror


def _refused(err: str, folder: str, inside: str = "") -> None:
    import os
    import socket

    line = err.splitlines()[-1]
    assert re.fullmatch(re.escape(f"Error: {folder}") + r" \(id [\w-]+\)" + re.escape(inside) +
                        re.escape(" is mirrored into now (a drivestage mirror's claim ") +
                        r"drivestage-mirror-[0-9a-f]{16}" + re.escape(
                            f": pid {os.getpid()} on {socket.gethostname()}, renewed ") +
                        r"\d+ s ago" + re.escape(
                            "): merging it would move files under its pushes. Stop that mirror "
                            "first (or wait until its claim is stale: ") + r"(2\.\d min|\d+ s)" +
                        re.escape(" without a renewal), then run this again"), line), line


def test_dedupe_refuses_the_pair_a_running_mirror_pushes_into_then_merges_once_it_stopped(
        emulator, store, tmp_path):
    old, new = _twins(emulator, store)
    mirror = _mirror(emulator, tmp_path, "drive:runs/exp")
    try:
        assert len(_mirror_props(emulator)) == 1
        before = live(emulator)
        for args in (("dedupe", "drive:runs/exp"), ("dedupe", "drive:runs/exp", "--dry-run")):
            code, out, err = _run(*args)
            assert code == 1, err
            _refused(err, "drive:runs/exp")
            assert live(emulator) == before
    finally:
        mirror.stop(60)
    until_claims(emulator, lambda found: found == [], "the claim was never removed")
    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert {"runs/exp/a.txt", "runs/exp/b.txt", "runs/exp/m.txt"} <= set(live(emulator))


def test_dedupe_refuses_a_pair_inside_the_folder_a_running_mirror_pushes_into(
        emulator, store, tmp_path):
    """The mirror's destination is runs, the twins are runs/exp: merged under it, the
    mirror's tree (runs/exp/…) loses the folder it pushes into by id."""
    old, new = _twins(emulator, store)
    mirror = _mirror(emulator, tmp_path, "drive:runs")
    try:
        runs = emulator.find("runs")["id"]
        before = live(emulator)
        code, out, err = _run("dedupe", "drive:runs/exp")
        assert code == 1, err
        _refused(err, "drive:runs/exp", f" is inside drive:runs (id {runs}), which")
        assert live(emulator) == before
    finally:
        mirror.stop(60)
    until_claims(emulator, lambda found: found == [], "the claim was never removed")
    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 0, err


def test_a_mirror_claim_stale_by_its_own_stale_s_holds_nothing(emulator, store):
    """A mirror killed on another machine 10 min ago (its claim renewed no more, stale after
    150 s): merged."""
    from drivestage.drive import server_clock
    from drivestage.store import RemoteEntry

    old, new = _twins(emulator, store)
    now = round(server_clock.now(), 1)
    store.set_public_property(RemoteEntry(new, "exp", True), "drivestage-mirror-0123456789abcdef",
                              f"1|{now - 600:.1f}|{now - 900:.1f}|4242|0badc0de|0|150.0|nas")
    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert set(live(emulator)) == {"runs", "runs/exp", "runs/exp/a.txt", "runs/exp/b.txt"}
