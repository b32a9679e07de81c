"""torchrun / DDP helpers: one process per device; rank 0 logs, evaluates, saves, syncs.

``torchrun --nproc_per_node=N -m trainer train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`setup` reads them and starts NCCL on GPUs, gloo on CPU.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist

from trainer import stuck

logger = logging.getLogger(__name__)

#: Another rank was lost (:mod:`trainer.peer_loss`): no collective can be answered any more,
#: so every helper here acts as in a single process (rank 0 then saves with none).
_lost = False
#: Seconds the process group's teardown may take once a rank was lost.
TEARDOWN_S = 10.0


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on global rank 0 (the one that logs, evaluates, saves and talks to Drive)."""
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        """True on local rank 0 (the one that stages data on this machine)."""
        return self.local_rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_info() -> DistInfo:
    """Read the torchrun environment (single process when unset)."""
    return DistInfo(rank=int(os.environ.get("RANK", 0)),
                    world_size=int(os.environ.get("WORLD_SIZE", 1)),
                    local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def setup(device: str = "auto") -> tuple[DistInfo, torch.device]:
    """Initialise the process group when launched by torchrun; pick this rank's device."""
    info = env_info()
    if device.startswith("cuda") and not torch.cuda.is_available():
        from trainer.errors import ConfigError

        raise ConfigError(f"train.device={device!r} but CUDA is not available here; use auto or cpu")
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        # One GPU per process under torchrun; "cuda:N" pins a single process to GPU N.
        idx = info.local_rank if device in ("auto", "cuda") else int(device.split(":")[1])
        dev = torch.device("cuda", idx)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if info.distributed and not (dist.is_available() and dist.is_initialized()):
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
        logger.info("rank %d/%d (local %d) on %s, backend %s", info.rank, info.world_size,
                    info.local_rank, dev, backend)
    return info, dev


def cpu_has_bf16() -> bool:
    """Native bf16 convolutions on this CPU (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cleanup() -> None:
    """Tear the process group down (safe to call when none was started); bounded once a rank
    was lost (a backend that waits for its peers there would hold the process's end)."""
    global _lost
    if not (dist.is_available() and dist.is_initialized()):
        return
    if not _lost:
        dist.destroy_process_group()
        return
    import threading

    down = threading.Thread(target=dist.destroy_process_group, name="trainer-teardown",
                            daemon=True)
    down.start()
    down.join(TEARDOWN_S)
    _lost = down.is_alive()


def lose() -> None:
    """Another rank is lost: from here every collective of this module is a no-op."""
    global _lost
    _lost = True


def is_initialized() -> bool:
    """Whether a torch.distributed process group is running (and its ranks all there)."""
    return dist.is_available() and dist.is_initialized() and not _lost


@stuck.collective
def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_initialized():
        dist.barrier()


@stuck.collective
def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Send a picklable object from ``src`` to every rank; returns it everywhere."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


@stuck.collective
def all_gather_object(obj: Any) -> list:
    """Every rank's ``obj``, in rank order."""
    if not is_initialized():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


@stuck.collective
def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Average a tensor over ranks (returns a new tensor)."""
    if not is_initialized():
        return t
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / dist.get_world_size()


@stuck.collective
def agree(signum: int, save: bool) -> tuple[int, bool]:
    """``(the highest stop signal any rank got (0: none), any rank asks to save)`` in one
    collective (every rank calls it after every iteration); on a single process the inputs."""
    if not is_initialized():
        return signum, save
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([float(signum), float(save)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t[0].item()), bool(t[1].item())


@contextlib.contextmanager
def main_first(info: DistInfo, *, local: bool = True) -> Iterator[bool]:
    """Run the body on (local) rank 0 first while the other ranks wait, then on the others.

    Used to pull the dataset once per machine. A failure on the first rank is passed to
    the others as an error instead of leaving them waiting at the barrier forever; with
    several machines, to the other machines' first ranks too (they went on alone before, and
    waited in training's first collective for the timeout).
    """
    first = info.is_local_main if local else info.is_main
    if not is_initialized():
        yield True
        return
    if first:
        try:
            yield True
        except BaseException:
            _share_failure(True)
            raise
        if _share_failure(False):
            raise RuntimeError("staging failed on another machine; see its log")
    else:
        if _share_failure(False):
            raise RuntimeError("staging failed on the first rank; see its log")
        yield False


@stuck.collective
def _share_failure(failed: bool) -> bool:
    # NCCL only reduces CUDA tensors; gloo takes CPU ones.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    flag = torch.tensor([1 if failed else 0], dtype=torch.int64, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


@stuck.collective
def broadcast_buffers(model: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank.

    DDP keeps the parameters equal, but each rank's last forward updates the running
    statistics with its own batch; this makes the ranks identical again (e.g. at epoch end).
    """
    if not is_initialized():
        return
    for buf in unwrap(model).buffers():
        dist.broadcast(buf.data, src=src)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a DDP wrapper."""
    return model.module if hasattr(model, "module") else model
