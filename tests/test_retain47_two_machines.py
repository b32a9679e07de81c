"""retain47: two machines push one checkpoint name at once, with different bytes.

Machine B sends ``last.pt`` (new bytes) and is held before its sidecar goes (the proxy holds
that upload's request). Machine A, whose ``last.pt`` equals the older copy on Drive (the one
Drive's ``last.json`` vouches for), pushes meanwhile: Drive's newest copy is not its bytes, so
it sends its own and removes the same-named old copies. B's copy, newer than the copy A's
bytes equal and vouched for by no sidecar *yet*, was among them: B's sidecar then arrived
naming bytes no longer on Drive, and Drive held no verified checkpoint until B saw it and sent
its copy again (a SIGKILL there left it so)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

import _cli
from _checkpoints import md5, sidecar_json
from _drive_state import live_md5s
from _envs import env  # noqa: F401  (a fixture)

FOLDER = "Models/logs"


def _held_update(proxy, file_id: str) -> tuple[threading.Event, threading.Event]:
    """Hold the requests that upload new content into ``file_id`` (a sidecar is updated in
    place) before the emulator sees them: (reached, release)."""
    reached, release = threading.Event(), threading.Event()

    def hold(body: bytes) -> bytes:
        reached.set()
        assert release.wait(30), "never released"
        return body
    proxy.mangle("PUT", rf"^/upload/drive/v2/files/{file_id}\?", hold)
    return reached, release


def _vouched(emu) -> bool:
    """Drive's last.json names the md5 of a last.pt that is there."""
    top = emu.find(FOLDER)["id"]
    live = [f for f in emu.files() if not f["labels"]["trashed"]
            and any(p["id"] == top for p in f.get("parents") or [])]
    sides = [f for f in live if f["title"] == "last.json"]
    assert len(sides) == 1, sides
    said = json.loads(emu.read_bytes(sides[0]["id"]))["md5"]
    return said in {f.get("md5Checksum") for f in live if f["title"] == "last.pt"}


def test_a_push_of_older_bytes_keeps_the_copy_another_machine_is_still_sending(
        emulator, proxy, env, tmp_path):
    v1, v2 = os.urandom(3000), os.urandom(3000)
    emulator.add_file(f"{FOLDER}/last.pt", v1)
    side = emulator.add_file(f"{FOLDER}/last.json", sidecar_json(1, v1))
    a, b = tmp_path / "a", tmp_path / "b"
    for src, data, epoch in ((a, v1, 1), (b, v2, 2)):
        src.mkdir()
        (src / "last.pt").write_bytes(data)
        (src / "last.json").write_bytes(sidecar_json(epoch, data))
    reached, release = _held_update(proxy, side)
    # Machine B: another process, its own state (so its own place lock), through the proxy.
    b_env = dict(_cli.child_env(emulator), DRIVESTAGE_API_ROOT=proxy.url,
                 DRIVESTAGE_STATE_DIR=str(tmp_path / "b-state"))
    proc = subprocess.Popen([sys.executable, "-m", "drivestage", "push", str(b),
                             f"drive:{FOLDER}"], env=b_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        if not reached.wait(60):
            proc.kill()
            pytest.fail(f"machine B never sent its sidecar: {proc.communicate()}")
        assert sorted(live_md5s(emulator, FOLDER)["last.pt"]) == sorted([md5(v1), md5(v2)])
        # Machine A, meanwhile: its last.pt is the older, verified copy.
        code, _, err = _cli.run("push", str(a), f"drive:{FOLDER}")
        assert code == 0, err
        assert md5(v2) in live_md5s(emulator, FOLDER)["last.pt"], err
        said = [ln for ln in err.splitlines() if "beside the copy just pushed" in ln]
        assert len(said) == 1 and said[0].endswith(
            ": another writer sent it after these bytes were on the store (it may be "
            "sending its sidecar still)"), err
    finally:
        release.set()
        _, b_err = proc.communicate(timeout=60)
    assert proc.returncode == 0, b_err
    # (on main B saw its copy gone after its sidecar went, and sent it again: until then
    # Drive's sidecar named bytes not there)
    assert "sending it again" not in b_err, b_err
    assert _vouched(emulator), (live_md5s(emulator, FOLDER), b_err)
