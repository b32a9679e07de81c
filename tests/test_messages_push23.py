"""push23's messages (docs/troubleshooting.md), each made to happen."""
from __future__ import annotations

import hashlib
import os

from _checkpoints import sidecar_json
from _messages import renders, shown

GONE = "went from the store after it was sent, before its sidecar arrived"


class _DeletedFirst:
    """The push's store (the emulator through the real stack): just before the upload of the
    sidecar ``name``, ``before()`` runs (another runtime deletes the checkpoint just sent)."""

    def __init__(self, emulator, name: str, before):
        from drivestage.drive import connect

        self._store = connect(api_root=emulator.url, token="test-token")
        self.name, self.before, self.done = name, before, False

    def __getattr__(self, attr):
        return getattr(self._store, attr)

    def upload(self, local_path, folder, name, **kw):
        if name == self.name and not self.done:
            self.done = True
            self.before()
        return self._store.upload(local_path, folder, name, **kw)


@renders(GONE)
def test_a_checkpoint_deleted_before_its_sidecar_arrived_is_sent_again(emulator, local_state,
                                                                       tmp_path, caplog):
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    data = os.urandom(3000)
    (src / "epoch_001.pt").write_bytes(data)
    (src / "epoch_001.json").write_bytes(sidecar_json(1, data))
    emulator.add_folder("Models/logs")

    def delete() -> None:   # another runtime's push --delete: no sidecar yet, not spared
        emulator.store.delete(emulator.find("Models/logs/epoch_001.pt")["id"])

    store = _DeletedFirst(emulator, "epoch_001.json", delete)
    push(str(src), (store, "Models/logs"), jobs=1)
    assert store.done
    line = next(x for x in caplog.text.splitlines() if "went from the store" in x)
    assert line.endswith("epoch_001.pt went from the store after it was sent, before its "
                         "sidecar arrived (another push --delete?); sending it again"), line
    shown(GONE, line)
    live = emulator.find("Models/logs/epoch_001.pt")
    assert hashlib.md5(emulator.read_bytes(live["id"])).hexdigest() == hashlib.md5(data).hexdigest()
