"""A Drive server whose bytes disagree with its own metadata (liar22): small files read whole
(sidecars) served with other bytes than their md5 names, metadata md5/size that lie about the
bytes served, ranged answers that name another range, upload status queries that claim more
than was sent. Nothing wrong is ever declared good, nothing verified is deleted on it, and a
failure is one ``Error:`` line.

In-process CLI (tests/_cli.py) and library calls against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import re

import pytest

import _cli
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply


def _swap(old: bytes, new: bytes):
    """The answer with ``old`` replaced by ``new`` (same length: the headers stay right)."""
    assert len(old) == len(new)

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        return Reply(status, headers, [body.replace(old, new)])
    return mutate


def _fill(emulator, top="Models/logs", metrics=(0.3, 0.9, 0.1, 0.2, 0.4)) -> dict[str, str]:
    ids = {}
    for epoch, m in enumerate(metrics, start=1):
        name = f"epoch_{epoch:03d}.pt"
        ids[name] = emulator.add_file(f"{top}/{name}", b"w" * (100 * epoch))
        ids[name + ".json"] = emulator.add_file(
            f"{top}/{name}.json", json.dumps({"epoch": epoch, "metrics": {"map50": m}}).encode())
    return ids


def _live(emulator, folder: str) -> set[str]:
    rec = emulator.find(folder)
    return {c["title"] for c in emulator.store.children(rec["id"]) if not c.get("trashed")}


def test_a_sidecar_served_with_another_metric_never_gets_the_best_pruned(
        emulator, proxy, liar_env):
    """prune --keep-best 1: the server serves epoch_002's sidecar (map50 0.9, the best) with
    0.0 in its place, bytes its md5 does not name. Before: epoch_002.pt, the best checkpoint,
    was deleted."""
    ids = _fill(emulator)
    proxy.on("GET", rf"/files/{re.escape(ids['epoch_002.pt.json'])}\?.*alt=media",
             _swap(b"0.9", b"0.0"))
    code, out, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1", "--keep-best",
                              "1", "--metric", "map50")
    line = one_error_line(code, err)
    assert "epoch_002.pt.json" in line
    assert {"epoch_002.pt", "epoch_002.pt.json"} <= _live(emulator, "Models/logs")


def _metadata(file_id: str, **fields):
    """files.get and files.list answers with ``fields`` set on ``file_id``'s resource (None:
    the field left out)."""
    def fix(res: dict) -> None:
        if res.get("id") == file_id:
            for k, v in fields.items():
                if v is None:
                    res.pop(k, None)
                else:
                    res[k] = v

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        obj = json.loads(body)
        for res in obj.get("items", [obj]):
            fix(res)
        data = json.dumps(obj).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(data))
        return Reply(status, out, [data])
    return mutate


def _nothing_staged(dest) -> None:
    """No file under a final name (partial downloads, their records and locks may stay)."""
    assert not dest.exists() or not [p for p in dest.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(dest).parts)], list(dest.rglob("*"))


def test_a_metadata_md5_of_other_bytes_never_stages_the_bytes_served(
        emulator, proxy, liar_env, tmp_path):
    """Every answer names one md5 (no SHA-256) and the bytes are others: two downloads, one
    line, nothing staged (held before liar22)."""
    fid = emulator.add_file("data/f.bin", os.urandom(300 << 10))
    proxy.on("GET", r"^/drive/v2/files(/[^/?]+)?\?(?!.*alt=media)",
             _metadata(fid, md5Checksum=hashlib.md5(b"other bytes").hexdigest(),
                       sha256Checksum=None))
    dest = tmp_path / "dest"
    line = one_error_line(*_cli.run("pull", "drive:data/f.bin", str(dest))[::2])
    assert "do not match Drive" in line and "twice" in line
    _nothing_staged(dest)
    assert proxy.count("GET", "alt=media") <= 4


@pytest.mark.parametrize("delta", [+100, -100], ids=["larger", "smaller"])
def test_a_metadata_size_that_lies_never_stages_anything(emulator, proxy, liar_env, tmp_path,
                                                         delta):
    data = os.urandom(300 << 10)
    fid = emulator.add_file("data/f.bin", data)
    proxy.on("GET", r"^/drive/v2/files(/[^/?]+)?\?(?!.*alt=media)",
             _metadata(fid, fileSize=str(len(data) + delta)))
    dest = tmp_path / "dest"
    line = one_error_line(*_cli.run("pull", "drive:data/f.bin", str(dest))[::2])
    assert "drive:data/f.bin" in line
    _nothing_staged(dest)


def _content_range_shifted(status: int, headers: dict, body: bytes) -> Reply:
    """A 206 whose Content-Range names a range one byte further on than the one asked."""
    out = dict(headers)
    for k, v in headers.items():
        if k.lower() == "content-range":
            m = re.match(r"bytes (\d+)-(\d+)/(\d+)", v)
            assert m
            a, b, n = map(int, m.groups())
            out[k] = f"bytes {a + 1}-{b + 1}/{n}"
    return Reply(status, out, [body])


def test_a_range_answered_as_another_range_is_bounded_and_stages_nothing(
        emulator, proxy, liar_env, tmp_path):
    emulator.add_file("data/f.bin", os.urandom(300 << 10))
    proxy.on("GET", r"alt=media", _content_range_shifted)
    dest = tmp_path / "dest"
    line = one_error_line(*_cli.run("pull", "drive:data/f.bin", str(dest))[::2])
    assert "Content-Range" in line
    _nothing_staged(dest)
    assert proxy.count("GET", "alt=media") <= 3


def _garbage_after(status: int, headers: dict, body: bytes) -> Reply:
    """The answer, then bytes past its Content-Length on the kept-alive connection (what the
    next answer read on it starts with)."""
    return Reply(status, headers, [body, b"HTTP/1.1 200 OK\r\nX-Liar: yes\r\n\r\n" + b"x" * 999])


def test_bytes_past_the_content_length_never_reach_a_file(emulator, proxy, liar_env,
                                                           tmp_path):
    data = {f"f{i}.bin": os.urandom((64 + i) << 10) for i in range(4)}
    for name, blob in data.items():
        emulator.add_file(f"data/{name}", blob)
    proxy.on("GET", r"alt=media", _garbage_after)
    dest = tmp_path / "dest"
    code, out, err = _cli.run("pull", "drive:data", str(dest))
    if code == 0:
        assert {p.name: p.read_bytes() for p in (dest / "data").iterdir()
                if not p.name.startswith(".")} == data
    else:
        one_error_line(code, err)
        _nothing_staged(dest)


@pytest.fixture
def hostile_store(proxy, local_state, monkeypatch):
    from drivestage.drive import connect

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "5")
    return connect(api_root=proxy.url, token="test-token")


def test_a_status_query_claiming_bytes_never_sent_never_leaves_a_file_of_other_bytes(
        emulator, proxy, hostile_store, tmp_path):
    """The second chunk fails; the status query that follows says the server kept two chunks
    when it kept one. The client skips a chunk it never sent; the upload must end with the
    file's own bytes on Drive or no file at all."""
    unit = 256 << 10
    data = os.urandom(4 * unit)
    path = tmp_path / "epoch_001.pt"
    path.write_bytes(data)
    folder = hostile_store.make_folders("Models/logs")

    def failed(status: int, headers: dict, body: bytes) -> Reply:
        return Reply(503, {"Content-Length": "0"}, [b""])

    def claims_more(status: int, headers: dict, body: bytes) -> Reply:
        out = dict(headers)
        if status == 308:
            out["Range"] = f"bytes=0-{2 * unit - 1}"
        return Reply(status, out, [body])
    proxy.on("PUT", r"upload_id=", lambda s, h, b: Reply(s, h, [b]), times=1)
    proxy.on("PUT", r"upload_id=", failed, times=1, forward=False)
    proxy.on("PUT", r"upload_id=", claims_more, times=1)
    try:
        entry = hostile_store.upload(str(path), folder, "epoch_001.pt", chunk_size=unit)
    except Exception as exc:  # one typed failure, no file
        from drivestage.errors import DriveStageError
        assert isinstance(exc, DriveStageError), repr(exc)
        assert emulator.find("Models/logs/epoch_001.pt") is None
    else:
        assert emulator.read_bytes(entry.id) == data
    assert proxy.count("PUT", "upload_id=") <= 20


def test_a_resume_whose_newest_sidecar_is_served_with_other_bytes_never_goes_back_an_epoch(
        emulator, proxy, liar_env, tmp_path):
    """The trainer's resume from Drive: epoch_002.json is served saying epoch 9 (bytes its md5
    does not name). Before: epoch_002 "cannot be used" and the run went on from epoch_001, an
    epoch lost (and the next push's retention free to drop epoch_002). Now the resume stops
    with the checksum error, nothing downloaded."""
    import io
    from types import SimpleNamespace

    import torch

    from drivestage.errors import ChecksumMismatchError
    from trainer.drive import DriveFolder
    from trainer.resume import _decide

    def state(epoch: int) -> bytes:
        buf = io.BytesIO()
        torch.save({"format_version": 2, "model": {}, "optimizer": {}, "epoch": epoch,
                    "iteration": epoch * 10, "epoch_iteration": 0, "config": {}, "run": "r1"},
                   buf)
        return buf.getvalue()

    for epoch in (1, 2):
        data = state(epoch)
        emulator.add_file(f"Models/logs/epoch_{epoch:03d}.pt", data)
        side = emulator.add_file(f"Models/logs/epoch_{epoch:03d}.json", json.dumps(
            {"epoch": epoch, "iteration": epoch * 10, "epoch_iteration": 0, "run": "r1",
             "md5": hashlib.md5(data).hexdigest(), "size": len(data)}).encode())
    proxy.on("GET", rf"/files/{side}\?.*alt=media", _swap(b'"epoch": 2', b'"epoch": 9'))
    out_dir = tmp_path / "logs"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(out_dir)))
    with pytest.raises(ChecksumMismatchError, match="epoch_002.json"):
        _decide(cfg, "auto", DriveFolder("drive:Models/logs", str(out_dir)))
    assert not out_dir.exists() or not list(out_dir.glob("*.pt"))


def test_a_binary_file_listed_without_any_checksum_is_never_staged_unverified(
        emulator, proxy, liar_env, tmp_path):
    """Drive gives an md5 for every file with content; a server that leaves it out (and any
    SHA-256) for a binary file offers nothing to verify its bytes against. The bytes served
    are another file's: nothing may reach the final name as verified."""
    fid = emulator.add_file("data/f.bin", os.urandom(300 << 10))
    proxy.on("GET", r"^/drive/v2/files(/[^/?]+)?\?(?!.*alt=media)",
             _metadata(fid, md5Checksum=None, sha256Checksum=None))
    proxy.on("GET", r"alt=media", lambda s, h, b: Reply(s, h, [bytes(len(b))]))
    dest = tmp_path / "dest"
    code, out, err = _cli.run("pull", "drive:data/f.bin", str(dest))
    # (fidelity28: not "has no binary content", which took it for a Google Doc.)
    assert code != 0 and "Drive lists no checksum for it" in err and "Traceback" not in err
    _nothing_staged(dest)
