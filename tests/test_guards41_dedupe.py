"""guards41: ``drivestage dedupe`` beside a live training run. A trainer holds its run folder
with a lease claim (trainer.lease) that its own pushes check at every commit; dedupe, a
command a user runs beside it, checked nothing: merging a pair of same-named run folders
moved the run's claim out of the folder it renews it in (the run then holds no claim there,
and the other folder's trainer reads a claim of a higher generation as a take-over), and a
newer folder the run pushes into by id went to the trash with what it sent next. A pair of
which either folder holds a live claim is now refused before anything of it moves: one line,
exit 1; a released or stale claim holds nothing."""
from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner

from drivestage.cli import cli
from drivestage.drive.resources import FOLDER_MIME
from tests.test_messages_dedupe import live, put


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def _run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.stdout, r.stderr


def _folder(store, name: str, parent: str) -> str:
    """A folder made as another tool would (no look first): a same-named twin."""
    f = store.drive.CreateFile({"title": name, "mimeType": FOLDER_MIME,
                                "parents": [{"id": parent}]})
    f.Upload()
    return f["id"]


def _twins(emulator, store) -> tuple[str, str]:
    """runs/exp twice: the oldest with a.txt, the newer with b.txt."""
    runs = emulator.add_folder("runs")
    old = _folder(store, "exp", runs)
    new = _folder(store, "exp", runs)
    put(emulator, store, old, "a.txt", b"a")
    put(emulator, store, new, "b.txt", b"b")
    return old, new


def _lease(tmp_path, spec: str):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    local = tmp_path / "run"
    local.mkdir(exist_ok=True)
    lease = RunLease(DriveFolder(spec, str(local)), period_s=60.0)
    lease.acquire()
    return lease


def _said(folder_id: str, lease) -> str:
    """The refusal's line as a pattern: the seconds since the claim's renewal (and so the
    wait left) are those of a machine however loaded."""
    import os
    import socket

    return (re.escape(f"Error: drive:runs/exp (id {folder_id}) is held by a training run now "
                      f"(its lease {lease.name}: pid {os.getpid()} on {socket.gethostname()}, "
                      f"renewed ") + r"(\d+) s ago" + re.escape(
        "): merging it would move files under that run's pushes. Stop that run first (or wait "
        "until its lease is stale: ") + r"(2\.\d+ min|\d+ s)" + re.escape(
        " without a renewal), then run this again"))


@pytest.mark.parametrize("held", ["oldest", "newer"])
def test_dedupe_refuses_a_pair_a_live_run_holds_and_moves_nothing(
        emulator, store, tmp_path, monkeypatch, held):
    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    old, new = _twins(emulator, store)
    lease = _lease(tmp_path, "drive:runs/exp" if held == "oldest" else f"drive:id:{new}")
    try:
        before = live(emulator)
        claims = [k for k in before if k.startswith("runs/exp/trainer-lease-")]
        assert len(claims) == 1   # (in the folder the run holds)
        for args in (("dedupe", "drive:runs/exp"), ("dedupe", "drive:runs/exp", "--dry-run")):
            code, out, err = _run(*args)
            assert code == 1, err
            said = re.fullmatch(_said(old if held == "oldest" else new, lease),
                                err.splitlines()[-1])
            assert said is not None and int(said.group(1)) < 30, err
            assert live(emulator) == before
        holder = {f["title"]: (f["parents"][0]["id"]) for f in emulator.files()}[lease.name]
        assert holder == (old if held == "oldest" else new)
    finally:
        lease.release()
    # Its run ended (the claim removed): merged as before.
    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"],
                              "runs/exp/a.txt": [_md5(b"a")], "runs/exp/b.txt": [_md5(b"b")]}


def test_a_stale_or_released_claim_holds_nothing(emulator, store, tmp_path):
    """A claim silent past the stale_s it records, and one released (its removal refused),
    are no one's: the pair is merged; the newer's claim goes to the trash (moved, it read as
    a take-over to a run started in the oldest meanwhile: attacklease42)."""
    old, new = _twins(emulator, store)
    body = {"owner": "x", "host": "elsewhere", "pid": 4242, "machine": "m", "generation": 1,
            "stale_s": 150.0}
    stale = put(emulator, store, old, "trainer-lease-aaaa.json", json.dumps(body).encode())
    emulator.store.update(stale, modified=time.time() - 151)
    put(emulator, store, new, "trainer-lease-bbbb.json",
        json.dumps({**body, "released": True}).encode())

    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert set(live(emulator)) == {"runs", "runs/exp", "runs/exp/a.txt", "runs/exp/b.txt",
                                   "runs/exp/trainer-lease-aaaa.json"}


def test_a_claim_without_stale_s_counts_as_live_for_the_longest_lease(emulator, store, tmp_path):
    """A claim of a trainer from before it recorded stale_s, silent 10 minutes: its lease may
    be of 60-minute renewals (drive.lease_minutes' most); held."""
    old, new = _twins(emulator, store)
    body = {"owner": "x", "host": "elsewhere", "pid": 4242, "machine": "m", "generation": 1}
    claim = put(emulator, store, new, "trainer-lease-cccc.json", json.dumps(body).encode())
    emulator.store.update(claim, modified=time.time() - 600)
    before = live(emulator)

    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 1
    line = err.splitlines()[-1]
    assert re.fullmatch(re.escape(
        f"Error: drive:runs/exp (id {new}) is held by a training run now (its lease "
        "trainer-lease-cccc.json: pid 4242 on elsewhere, renewed ") + r"6[0-2]\d s ago" +
        re.escape("): merging it would move files under that run's pushes. Stop that run first "
                  "(or wait until its lease is stale: ") + r"110\.[1-5] min" +
        re.escape(" without a renewal), then run this again"), line), line
    assert live(emulator) == before


def _md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()
