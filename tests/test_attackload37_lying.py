"""attackload37: loadfail37's line between a damaged checkpoint (passed over for an older
one) and one that failed to load here (the stop), under sidecars that lie or say too little.
What is pinned here, on a real run's checkpoints cut short:

- a sidecar whose size was made to match the cut file but whose md5 is the saved bytes':
  damaged (the md5 read decides, not the size): passed over, epoch_001.pt found;
- a sidecar that names no md5 (trainer 0.1.0's) and the cut file's size: it vouches for
  nothing, damaged, passed over;
- a sidecar forged for the cut bytes (their md5 and size): passed over all the same, as
  damaged: bytes that are not a whole zip (no central directory) load on no machine and
  with no torch, so the stop's advice (memory, disk, a newer torch) led nowhere and came
  again at every start (test_messages_train's "broken tool" pins the same). A whole zip
  torch cannot read (a newer torch's format) still stops: tests/test_loadfail37_*.py."""
from __future__ import annotations

import dataclasses
import logging
import os

import pytest

from drivestage import sidecar as sidecars
from test_loadfail37_find import _two_epochs
from test_trainer22_hostile import _md5s
from test_trainer23_fallback import _warnings
from trainer import checkpoint as ckpt


def _cut(path: str, **said) -> None:
    """``path`` and its copy ``last.pt`` cut to half; their sidecars then say ``said``
    (a value None: the key left out; "cut": the cut bytes' md5 or size)."""
    for p in (path, os.path.join(os.path.dirname(path), "last.pt")):
        with open(p, "r+b") as fh:
            fh.truncate(os.path.getsize(p) // 2)
        md5, size = ckpt.md5_of(p)
        side = ckpt.read_sidecar(p)
        now = {k: {"md5": md5, "size": size}[k] if v == "cut" else v for k, v in said.items()}
        sidecars.write(p, dataclasses.replace(side, **now))


@pytest.mark.parametrize("said", [{"size": "cut"}, {"size": "cut", "md5": None}],
                         ids=["size made to match", "no md5"])
def test_a_cut_file_its_sidecar_does_not_vouch_for_is_passed_over(tiny_config, tmp_path,
                                                                   caplog, said):
    logs = tmp_path / "logs"
    path = _two_epochs(tiny_config, logs)
    _cut(path, **said)
    before = _md5s(logs)

    with caplog.at_level(logging.WARNING):
        found = ckpt.find_latest(str(logs))

    assert found == str(logs / "epoch_001.pt")
    assert [w.split(" cannot be read ")[0] for w in _warnings(caplog)] == [
        f"skipping checkpoint {path}", f"skipping checkpoint {logs / 'last.pt'}"]
    assert _md5s(logs) == before


def test_a_cut_file_its_sidecar_was_forged_for_is_passed_over(tiny_config, tmp_path, caplog):
    logs = tmp_path / "logs"
    path = _two_epochs(tiny_config, logs)
    _cut(path, size="cut", md5="cut")
    before = _md5s(logs)

    with caplog.at_level(logging.WARNING):
        found = ckpt.find_latest(str(logs))

    assert found == str(logs / "epoch_001.pt")
    assert [w.split(" cannot be read ")[0] for w in _warnings(caplog)] == [
        f"skipping checkpoint {path}", f"skipping checkpoint {logs / 'last.pt'}"]
    assert _md5s(logs) == before
