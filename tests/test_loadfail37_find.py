"""loadfail37: a verified checkpoint that does not load for a reason outside the file (no
memory, a permission, a torch too old for its format) was skipped as damaged by
``find_latest``: ``--resume auto`` went on from an older checkpoint, and the run's next saves
replaced or pruned the newer verified one. Now the sidecar tells the two apart: bytes that
are not those it vouches for are damaged (skipped, as before); bytes that are, or that cannot
even be read to tell, stop the search with one line naming the file, the error and what to do
(``LoadFailedError``), nothing touched.

The library path (``trainer.checkpoint.find_latest``), on real checkpoints written by the
trainer's own save, failing in real ways: a file in the zip format of a newer torch (whose
sidecar vouches for it, as that trainer writes it), a process memory limit
(``RLIMIT_AS``, in a child), a file this user may not read (as root: in a child without the
capabilities that let root read anything)."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import textwrap
import zipfile

import pytest
import torch

from drivestage import sidecar as sidecars
from _no_root_reads import in_a_child as _in_a_child
from test_trainer22_hostile import _md5s, _small_run
from test_trainer23_fallback import _save, _warnings
from trainer import checkpoint as ckpt
from trainer.errors import LoadFailedError

#: The end of every stop: what it keeps from happening, then what to do.
SO = ("so the run stops rather than go on from an older checkpoint, whose saves would replace "
      "or prune this one.")
AGAIN = ("then run the same command again; or go on from an older checkpoint on purpose with "
         "--resume PATH")


def _two_epochs(tiny_config, logs):
    """epoch_001.pt and epoch_002.pt (+ last.pt, its copy) of a real run, as saved."""
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    return _save(run, logs, "epoch_002.pt", 2, 2000.0, copies=["last.pt"])


def _newer_torch_format(path: str, vouch: bool = True) -> bytes:
    """``path`` rewritten as a newer torch's zip format (its ``version`` record 1000): what
    this torch refuses to read ("your PyTorch installation may be too old"). ``vouch``: its
    sidecar vouches for the new bytes, as the newer trainer that wrote them would have it;
    else the sidecar is left as it was (the bytes changed since it was written)."""
    with zipfile.ZipFile(path) as old:
        records = [(info.filename, old.read(info)) for info in old.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as new:
        for name, data in records:
            new.writestr(name, b"1000\n" if name.endswith("/version") else data)
    data = open(path, "rb").read()
    if vouch:
        md5, size = ckpt.md5_of(path)
        side = ckpt.read_sidecar(path)
        sidecars.write(path, dataclasses.replace(side, md5=md5, size=size))
    return data


def _torch_says(path: str) -> str:
    try:
        torch.load(path, weights_only=True)
    except RuntimeError as exc:
        return str(exc).strip().splitlines()[0]
    raise AssertionError(f"{path} loaded")


def test_a_verified_checkpoint_this_torch_cannot_read_stops_the_search(tiny_config, tmp_path):
    """epoch_002.pt (and last.pt) hold a newer torch's format, vouched for by their sidecars:
    not damaged, so not passed over for epoch_001.pt (before: returned, and the run's saves
    replaced them). One line names the file, torch's error and the way out; nothing moves."""
    logs = tmp_path / "logs"
    path = _two_epochs(tiny_config, logs)
    for name in ("epoch_002.pt", "last.pt"):
        _newer_torch_format(str(logs / name))
    md5 = ckpt.read_sidecar(path).md5
    before = _md5s(logs)

    with pytest.raises(LoadFailedError) as stopped:
        ckpt.find_latest(str(logs))

    assert str(stopped.value) == (
        f"cannot resume from {path}: loading it failed on this machine (RuntimeError: "
        f"{_torch_says(path)}), although its bytes are those its sidecar vouches for (md5 "
        f"{md5}): not damaged, {SO} Load it with the torch that wrote it or a newer one (this "
        f"is torch {torch.__version__}), {AGAIN}")
    assert stopped.value.path == path and stopped.value.exit_code == 1
    assert _md5s(logs) == before


def test_bytes_not_those_the_sidecar_vouches_for_are_still_passed_over_as_damaged(
        tiny_config, tmp_path, caplog):
    """The same unreadable bytes, but the sidecar vouches for those saved before (the file
    changed since): damaged, skipped with a warning, as before; so is a file cut short.
    epoch_001.pt is found."""
    logs = tmp_path / "logs"
    path = _two_epochs(tiny_config, logs)
    _newer_torch_format(path, vouch=False)
    with open(logs / "last.pt", "r+b") as fh:
        fh.truncate(os.path.getsize(logs / "last.pt") // 2)
    before = _md5s(logs)

    with caplog.at_level(logging.WARNING):
        found = ckpt.find_latest(str(logs))

    assert found == str(logs / "epoch_001.pt")
    said = _warnings(caplog)
    assert len(said) == 2 and all(w.startswith("skipping checkpoint ") for w in said), said
    assert f"skipping checkpoint {path} cannot be read (RuntimeError: " in said[0]
    assert _md5s(logs) == before


def _yolo_run(tiny_config, logs):
    """A real Run of the trainer's own network at full width (a checkpoint of about 70 MB:
    model, EMA and momentum), one step taken."""
    from test_messages_train import CLASSES
    from trainer import distributed
    from trainer.config import model_signature
    from trainer.engine import Run
    from trainer.model.yolo import YoloV4Tiny
    from trainer.optim import LRSchedule, ModelEMA
    from trainer.saving import Checkpointer
    from trainer.state import TrainState
    from trainer.stopping import StopFlag

    from test_trainer22_hostile import _config

    cfg = _config(tiny_config, logs)
    os.makedirs(logs, exist_ok=True)
    model = YoloV4Tiny(len(CLASSES), input_size=64)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    sum(o.sum() for o in model(torch.zeros(1, 3, 64, 64))).backward()
    opt.step()
    info, stop = distributed.env_info(), StopFlag(60)
    return Run(cfg, info, torch.device("cpu"), model, None, opt, ModelEMA(model),
               torch.amp.GradScaler("cpu", enabled=False), LRSchedule(cfg), list(CLASSES),
               model_signature(cfg, len(CLASSES)), TrainState(), stop,
               Checkpointer(cfg, info, None, stop), None)


#: What the child runs: its address space capped at what it uses plus 32 MiB, then the search.
_UNDER_A_LIMIT = textwrap.dedent("""
    import json, re, resource, sys
    from trainer import checkpoint as ckpt
    from trainer.errors import LoadFailedError

    used = int(re.search(r"VmSize:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
    resource.setrlimit(resource.RLIMIT_AS, (used * 1024 + (32 << 20),
                                            resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        print(json.dumps(["found", ckpt.find_latest(sys.argv[1])]))
    except LoadFailedError as exc:
        print(json.dumps(["stopped", str(exc), exc.path]))
    """)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status: Linux")
def test_a_verified_checkpoint_that_does_not_fit_in_memory_stops_the_search(
        tiny_config, tmp_path):
    """A process allowed 32 MiB more than it uses (RLIMIT_AS) cannot load a 70 MB checkpoint:
    torch's allocator fails. Its bytes are those its sidecar vouches for: the search stops
    naming it and that memory is what to free (before: skipped as "truncated or not a trainer
    checkpoint", and with nothing older, the run started over beside it)."""
    from trainer.saving import snapshot

    logs = tmp_path / "logs"
    state = snapshot(_yolo_run(tiny_config, logs))
    state.update(epoch=1, iteration=2, epoch_iteration=0, run="20261206-040000-aaaa")
    path = ckpt.save_checkpoint(state, str(logs / "epoch_001.pt"), saved=1000.0)
    del state
    assert os.path.getsize(path) > 64 << 20
    before = _md5s(logs)

    # The child forked with torch imported (tests/_trainer_proc.py: a fresh interpreter's
    # import of torch was half of this test), its limit set from its own size as before.
    from _trainer_proc import start_script

    script, out, err = tmp_path / "under_a_limit.py", tmp_path / "out", tmp_path / "err"
    script.write_text(_UNDER_A_LIMIT)
    child = start_script(str(script), [str(logs)], env=dict(os.environ, OMP_NUM_THREADS="1"),
                         stdout=str(out), stderr=str(err))
    try:
        code = child.wait(timeout=120)
    finally:
        child.kill()

    assert code == 0, err.read_text()
    said = json.loads(out.read_text().splitlines()[-1])
    assert said[0] == "stopped" and said[2] == path, said
    md5 = ckpt.read_sidecar(path).md5
    assert said[1].startswith(f"cannot resume from {path}: loading it failed on this machine ("), said
    assert said[1].endswith(
        f"), although its bytes are those its sidecar vouches for (md5 {md5}): not damaged, "
        f"{SO} Free memory (other processes, a notebook's other sessions) or run on a machine "
        f"with more, {AGAIN}"), said
    assert "memory" in said[1].split("(", 1)[1].lower()   # (torch's allocator said why)
    assert _md5s(logs) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="capabilities: Linux")
def test_a_verified_checkpoint_this_user_may_not_read_stops_the_search(tiny_config, tmp_path):
    """epoch_002.pt and last.pt are mode 000: neither loaded nor read to check against the
    sidecar, so not known to be damaged: the search stops naming the permission, not skips
    to epoch_001.pt."""
    logs = tmp_path / "logs"
    path = _two_epochs(tiny_config, logs)
    md5 = ckpt.read_sidecar(path).md5
    before = _md5s(logs)
    for name in ("epoch_002.pt", "last.pt"):
        os.chmod(logs / name, 0)

    def search() -> list:
        try:
            return ["found", ckpt.find_latest(str(logs))]
        except LoadFailedError as exc:
            return ["stopped", str(exc)]

    said = _in_a_child(search)

    for name in ("epoch_002.pt", "last.pt"):
        os.chmod(logs / name, 0o644)
    assert said == ["stopped", (
        f"cannot resume from {path}: it cannot be read on this machine (PermissionError: "
        f"[Errno 13] Permission denied: '{path}'), so whether its bytes are those its sidecar "
        f"vouches for (md5 {md5}) cannot be told: not known to be damaged, {SO} Give this user "
        f"read access to it (chmod, chown), {AGAIN}")]
    assert _md5s(logs) == before


def test_a_stops_line_still_names_the_newest_checkpoint_that_does_not_load_here(
        tiny_config, tmp_path, monkeypatch):
    """The line a stop ends with names the run folder's newest checkpoint (it searches as
    the resume does): one that does not load on this machine is still the newest, and the
    next run's resume says why it stops. Before: "nothing of run … is saved"."""
    from types import SimpleNamespace

    from test_trainer23_fallback import RUN
    from trainer.stop_lines import newest_text

    logs = tmp_path / "logs"
    _two_epochs(tiny_config, logs)
    monkeypatch.setenv("TRAINER_TEST_LOAD_ON", "*.pt=cuda:100")

    text = newest_text(SimpleNamespace(out_dir=str(logs)),
                       SimpleNamespace(state=SimpleNamespace(run=RUN)), "in")

    assert text == (f"the newest checkpoint in {logs} is epoch_002.pt (epoch 2, iteration 4): "
                    f"run the same command again to train on from it")
