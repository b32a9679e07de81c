"""A trainer's save as push tests make it: a checkpoint and its sidecar, at a given time."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Optional

RUN = "20261201-151200-3f2a"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sidecar_json(epoch: Optional[int], data: bytes, run: Optional[str] = RUN) -> bytes:
    """A format-2 sidecar vouching for ``data`` (no ``epoch`` key when ``epoch`` is None)."""
    body: dict = {"format": 2, "epoch_iteration": 0, "run": run, "md5": md5(data),
                  "size": len(data)}
    if epoch is not None:
        body["epoch"] = epoch
    return json.dumps(body).encode()


def save(src: str, stem: str, epoch: Optional[int], when: float, run: Optional[str] = RUN) -> dict:
    """The trainer's save: ``stem.pt`` then its sidecar, both written at ``when``. Returns
    the two files as Drive should hold them (name -> [md5])."""
    os.makedirs(src, exist_ok=True)
    data = os.urandom(3000)
    side = sidecar_json(epoch, data, run)
    for name, body in ((f"{stem}.pt", data), (f"{stem}.json", side)):
        path = os.path.join(src, name)
        with open(path, "wb") as fh:
            fh.write(body)
        os.utime(path, (when, when))
    return {f"{stem}.pt": [md5(data)], f"{stem}.json": [md5(side)]}
