"""A trainer's save as push tests make it: a checkpoint and its sidecar, at a given time."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Optional

RUN = "20261201-151200-3f2a"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sidecar_json(epoch: Optional[int], data: bytes, run: Optional[str] = RUN,
                 saved: object = None) -> bytes:
    """A sidecar vouching for ``data`` (no ``epoch`` key when ``epoch`` is None): format 2,
    or format 3 with ``saved`` as given (any JSON value, to write hostile ones too)."""
    body: dict = {"format": 2, "epoch_iteration": 0, "run": run, "md5": md5(data),
                  "size": len(data)}
    if epoch is not None:
        body["epoch"] = epoch
    if saved is not None:
        body.update(format=3, saved=saved)
    return json.dumps(body).encode()


def save(src: str, stem: str, epoch: Optional[int], when: float, run: Optional[str] = RUN,
         saved: Optional[float] = None) -> dict:
    """The trainer's save: ``stem.pt`` then its sidecar, both written at ``when`` (a format-3
    sidecar with ``saved``, when given). Returns the two files as Drive should hold them
    (name -> [md5])."""
    os.makedirs(src, exist_ok=True)
    data = os.urandom(3000)
    side = sidecar_json(epoch, data, run, saved)
    for name, body in ((f"{stem}.pt", data), (f"{stem}.json", side)):
        path = os.path.join(src, name)
        with open(path, "wb") as fh:
            fh.write(body)
        os.utime(path, (when, when))
    return {f"{stem}.pt": [md5(data)], f"{stem}.json": [md5(side)]}


def pushed_then_saved(tmp_path) -> tuple[str, dict, dict]:
    """SRC ``tmp_path/run``: epoch_001's pair sent to ``drive:runs/a`` by a ``push
    --keep-last 1`` (exit 0), then epoch_002's saved, not sent. (SRC, epoch_001's pair and
    epoch_002's, as :func:`save` returns them.)"""
    from _cli import run

    src = str(tmp_path / "run")
    first = save(src, "epoch_001", 1, 1000.0)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1")
    assert code == 0, err
    return src, first, save(src, "epoch_002", 2, 2000.0)
