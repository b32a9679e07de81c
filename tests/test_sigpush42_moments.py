"""``push``, ``prune`` and ``dedupe`` stopped by SIGTERM / SIGHUP where Drive has done (or is
doing) what the command asked but the command has not learnt it: an upload made but not yet
verified, checkpoints being pruned, an item being moved into the oldest folder. Each ends as
a Ctrl-C does (143 / 129 and its line, no lock holder record left), and a rerun leaves on
Drive exactly what it should: names, md5s, one copy each. Before, each died of the signal
at once (-15, -1) without a word, its lock holder files left in the state folder."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _checkpoints import sidecar_json
from _forkcli import cli_server
from _sigpush42 import STOPS, child, ended, live, md5, settled, stale, until
from test_messages_dedupe import folder, put

_SIGTERM = [STOPS[0]]


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter."""


@pytest.fixture(scope="session", autouse=True)
def _cli_server():
    """The fork server, started before any test's leak check (tests/_forkcli.py)."""
    return cli_server()


def _arrived(emulator, seen: int, kind: str, after: str = ""):
    """Whether a request of ``kind`` (not inside a batch) reached the emulator since request
    ``seen`` (after one of ``after``, when given)."""
    def ready() -> bool:
        kinds = [r.kind for r in emulator.requests[seen:] if not r.in_batch]
        start = kinds.index(after) if after in kinds else (0 if not after else len(kinds))
        return kind in kinds[start:]
    return ready


@pytest.mark.parametrize("sig,code,line", STOPS)
def test_a_signal_while_the_answer_to_an_upload_is_awaited(emulator, local_state, drive_env,
                                                          tmp_path, sig, code, line):
    """The server holds the upload's answer (2 s), then makes the file: the push, stopped
    while it waits for the answer whose md5 verifies it, never learns of it. The rerun finds
    it and makes no second copy."""
    src = tmp_path / "run"
    src.mkdir()
    data = os.urandom(60_000)
    (src / "model.pt").write_bytes(data)
    emulator.faults.latency(2.0, method="PUT", path=r"^/upload/", times=1)
    seen = len(emulator.requests)
    proc = child(emulator, "push", str(src), "drive:runs/a")
    until(proc, _arrived(emulator, seen, "media.upload"), "no upload")
    proc.send_signal(sig)
    got, err = ended(proc)
    assert (got, err) == (code, line + "\n")
    assert stale(tmp_path / "state") == []
    settled(emulator, seen)   # (the server's part done: the file made, its body being
    # small enough to be sent whole before the answer is awaited)
    rc, _, err = run("push", str(src), "drive:runs/a")
    assert rc == 0, err
    assert live(emulator) == [("model.pt", md5(data))]


def _epochs(emulator, src, on_drive: range, local: range) -> dict:
    """Checkpoints with their sidecars: ``on_drive`` put on Drive in runs/a, ``local`` in
    SRC. (name -> bytes) of all of them."""
    made = {}
    for e in [*on_drive, *local]:
        data = os.urandom(3000)
        made[f"epoch_{e:03d}.pt"], made[f"epoch_{e:03d}.pt.json"] = data, sidecar_json(e, data)
    for e in on_drive:
        for name in (f"epoch_{e:03d}.pt", f"epoch_{e:03d}.pt.json"):
            emulator.add_file(f"runs/a/{name}", made[name])
    for e in local:
        for name in (f"epoch_{e:03d}.pt", f"epoch_{e:03d}.pt.json"):
            (src / name).write_bytes(made[name])
    return made


def _kept(made: dict, epoch: int) -> list:
    return sorted((n, md5(d)) for n, d in made.items() if n.startswith(f"epoch_{epoch:03d}."))


@pytest.mark.parametrize("sig,code,line", STOPS)
def test_a_signal_while_a_push_prunes(emulator, local_state, drive_env, tmp_path, sig, code,
                                      line):
    """``--keep-last 1``: the new checkpoint verified, the old ones being deleted (the
    server holds each batch of deletions 2 s): stopped there, the rerun ends the pruning."""
    src = tmp_path / "run"
    src.mkdir()
    made = _epochs(emulator, src, range(1, 4), range(4, 5))
    emulator.faults.latency(2.0, path=r"^/batch/")
    seen = len(emulator.requests)
    proc = child(emulator, "push", str(src), "drive:runs/a", "--keep-last", "1")
    until(proc, _arrived(emulator, seen, "batch", after="media.upload"), "it never pruned")
    proc.send_signal(sig)
    got, err = ended(proc)
    assert got == code and err.endswith(f"\n{line}\n"), err
    assert stale(tmp_path / "state") == []
    emulator.faults.clear()
    settled(emulator, seen)
    rc, _, err = run("push", str(src), "drive:runs/a", "--keep-last", "1")
    assert rc == 0, err
    assert live(emulator) == _kept(made, 4)


@pytest.mark.parametrize("sig,code,line", _SIGTERM)
def test_a_signal_while_prune_deletes(emulator, local_state, drive_env, tmp_path, sig, code,
                                      line):
    src = tmp_path / "run"
    src.mkdir()
    made = _epochs(emulator, src, range(1, 5), range(0))
    emulator.faults.latency(2.0, path=r"^/batch/")
    seen = len(emulator.requests)
    proc = child(emulator, "prune", "drive:runs/a", "--keep-last", "1")
    until(proc, _arrived(emulator, seen, "batch"), "it never deleted")
    proc.send_signal(sig)
    got, err = ended(proc)
    assert (got, err) == (code, line + "\n")
    assert stale(tmp_path / "state", locked=False) == []
    emulator.faults.clear()
    settled(emulator, seen)
    rc, _, err = run("prune", "drive:runs/a", "--keep-last", "1")
    assert rc == 0, err
    assert live(emulator) == _kept(made, 4)


@pytest.mark.parametrize("sig,code,line", _SIGTERM)
def test_a_signal_while_dedupe_moves(emulator, local_state, drive_env, store, tmp_path, sig,
                                     code, line):
    """Two ``exp`` folders: dedupe moves the newer one's files into the oldest (the server
    holds each move 2 s); stopped there, the rerun ends the merge, nothing lost."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    files = {f"f{i}.txt": os.urandom(100 + i) for i in range(3)}
    put(emulator, store, old, "a.txt", b"in the oldest")
    for name, data in files.items():
        put(emulator, store, new, name, data)
    emulator.faults.latency(2.0, path=r"addParents")
    seen = len(emulator.requests)
    proc = child(emulator, "dedupe", "drive:runs/exp")
    until(proc, lambda: any("addParents" in r.query for r in emulator.requests[seen:]),
          "it never moved")
    proc.send_signal(sig)
    got, err = ended(proc)
    assert (got, err) == (code, line + "\n")
    assert stale(tmp_path / "state", locked=False) == []
    emulator.faults.clear()
    settled(emulator, seen)
    rc, _, err = run("dedupe", "drive:runs/exp")
    assert rc == 0, err
    want = sorted([("a.txt", md5(b"in the oldest"))] + [(n, md5(d)) for n, d in files.items()])
    assert live(emulator) == want
    exps = [f["id"] for f in emulator.files() if f["title"] == "exp"
            and not f["labels"]["trashed"]]
    assert exps == [old]
