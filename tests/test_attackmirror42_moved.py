"""attackmirror42: a mirror whose DEST folder is trashed (or moved away) while it runs. Its
push makes DEST anew at its path and goes on there; its claim (drivestage.mirror_claim) was
made once, on the folder id of its first push, and stayed there, renewed on the trashed
folder: the folder the mirror now pushes into held no claim, and dedupe merged under it.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from tests.test_guards41_dedupe import _folder, _run
from tests.test_leasefull42_dedupe_mirror import _refused, until_claims
from tests.test_messages_dedupe import live


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")


def _claimed(emulator) -> dict[str, list[str]]:
    """folder id -> the mirror claims on it."""
    out: dict[str, list[str]] = {}
    for f in emulator.files():
        for p in emulator.properties_of(f["id"]):
            if p["key"].startswith("drivestage-mirror-"):
                out.setdefault(f["id"], []).append(p["key"])
    return out


@pytest.mark.parametrize("how", ["trashed", "moved"])
def test_a_mirror_whose_dest_went_claims_the_folder_it_pushes_into_now(
        emulator, store, tmp_path, how):
    from drivestage.mirror import Mirror

    runs = emulator.add_folder("runs")
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.txt").write_bytes(b"m")
    mirror = Mirror(str(src), "drive:runs/exp", every=3600).start()
    try:
        mirror.flush(60)
        first = emulator.find("runs/exp")["id"]
        until_claims(emulator, lambda _: list(_claimed(emulator)) == [first],
                     "the first folder was never claimed")
        if how == "trashed":
            emulator.store.update_meta(first, {"labels": {"trashed": True}})
        else:
            elsewhere = emulator.add_folder("elsewhere")
            emulator.store.update_meta(first, {"parents": [{"id": elsewhere}]})
        (src / "n.txt").write_bytes(b"n")
        mirror.flush(60)
        now = emulator.find("runs/exp")["id"]
        assert now != first
        # (the claim's thread moves it: mirrorclaim43)
        until_claims(emulator, lambda _: list(_claimed(emulator)) == [now],
                     f"the claim stayed on {first}, not {now}")
        _folder(store, "exp", runs)   # (a twin, made by another tool)
        before = live(emulator)
        code, out, err = _run("dedupe", "drive:runs/exp")
        assert code == 1, err
        _refused(err, "drive:runs/exp")
        assert live(emulator) == before
    finally:
        mirror.stop(60)
    until_claims(emulator, lambda found: found == [], "the claim was never removed")
