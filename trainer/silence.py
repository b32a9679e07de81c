"""A rank of a torchrun job that is alive but silent, and a rank lost before training.

**Silent.** A rank stopped (SIGSTOP, a debugger), hung with the interpreter held, or on a
machine that froze or was cut off from the network closes no socket: the other ranks waited
in their next collective for the process group's whole timeout (30 minutes of paid, idle
GPUs on Colab, Kaggle or a spot VM), then ended in gloo's traceback with nothing saved. The
timeout cannot be short: rank 0 evaluates, stages data and writes checkpoints while the
others wait in a collective.

Here every rank runs a heartbeat thread: every tenth of ``train.silent_rank_minutes`` it adds
one to its own counter in the job's TCP store (torchrun's, at ``MASTER_ADDR:MASTER_PORT``;
its own client, with a short timeout) and reads the others'. A thread beats whatever the main
thread does (a long evaluation, the first step, a checkpoint written, a collective waited
in), so a slow rank is never taken for a silent one: only a process whose threads stopped
altogether, or one that no longer reaches the store, falls silent. A counter that did not
move for the bound makes its rank silent (not while this rank was stopped itself: a machine
paused as a whole and let go on takes no one for silent). The watcher then shuts down this process's sockets
to that rank (their addresses are what the rank published while it beat): the collective the
main thread waits in fails as for a lost rank (:mod:`trainer.peer_loss`: rank 0 saves, every
rank ends in one line), and the line says which rank was silent and for how long.

**Before training.** A rank lost while the run folder is locked, the data or weights staged,
the checkpoint to resume chosen or the room checked ended the others with gloo's traceback.
:func:`watch` turns it into one line naming the rank and the phase; nothing was trained yet.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
import stat
import sys
import threading
import time
from typing import Any, Iterator, Optional

from trainer import distributed, stuck
from trainer.errors import TrainingInterrupted

logger = logging.getLogger(__name__)

#: Beats per bound: a silent rank is seen at most a tenth of the bound late.
BEATS = 10
#: The longest wait for one answer of the store (a store that does not answer is no news).
STORE_WAIT_S = 10.0
#: The phases before training, by the function (innermost wins) a lost rank was met in.
PHASES = {"fit": "the run folder was locked", "_fit": "the run was prepared",
          "stage_data": "the data was staged",
          "_build": "model.weights were staged", "choose": "the checkpoint to resume was chosen",
          "_check_room": "the run folder's room was checked",
          "restore": "the checkpoint was restored", "loaded": "the checkpoint was restored"}

_silent: Optional[tuple[int, float]] = None   # (rank, seconds) once one was found silent
_fits = 0   # fits watched in this process: each one's keys are its own (a notebook's second fit)
_woke: Optional[float] = None   # the judge's last wake (time.monotonic()); None: no judge
_paused = (0.0, 0.0)            # (seconds, when it ended): this process stopped itself, last
_bound = 0.0                    # this fit's bound, in seconds


def _took(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def who_and_words(info: distributed.DistInfo) -> Optional[tuple[str, str]]:
    """``("rank 1", "rank 1 was silent for 5.1 min: ...")`` once a rank was found silent."""
    if _silent is None:
        return None
    rank, seconds = _silent
    return f"rank {rank}", (f"rank {rank} was silent for {_took(seconds)} "
                            f"(train.silent_rank_minutes): stopped, hung, or its machine frozen "
                            f"or cut off; end it if it is still there")


def stopped_itself() -> Optional[str]:
    """``this rank was itself stopped for 12.3 s, …``: where this process was stopped (a
    debugger, Ctrl-Z, its machine paused) longer than the bound, the others took it for
    silent and ended (rank 0 saving, where it was one of them); they, not this rank, were
    lost. None otherwise. Read by the main thread as its collective fails: the judge may not
    have woken since (its last wake says how long), or has (it noted the pause)."""
    now = time.monotonic()
    gap = now - _woke if _woke is not None else 0.0
    seen = max(gap, _paused[0] if now - _paused[1] < _bound else 0.0)   # (a pause long gone:
    # the others went on since, and were not lost because of it)
    if not _bound or seen <= _bound:
        return None
    return (f"this rank was itself stopped for {_took(seen)}, longer than "
            f"train.silent_rank_minutes: the others took it for silent and ended, their lines "
            f"say what was saved")


def _endpoints() -> list[tuple[int, tuple[str, int], Optional[tuple[str, int]]]]:
    """``(fd, local address, peer address)`` of this process's TCP sockets (Linux's /proc)."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if not stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):
            continue
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
                out.append((int(name), _addr(sock.getsockname()), _peer(sock)))
        except OSError:
            pass
        finally:
            sock.close()   # (the duplicate only: the socket stays open)
    return out


def _store_port() -> int:
    """The port of the job's TCP store (``MASTER_PORT``; :func:`watch` runs only with it)."""
    return int(os.environ.get("MASTER_PORT", "0"))


def _addr(address: Any) -> tuple[str, int]:
    host = str(address[0])
    return (host[7:] if host.startswith("::ffff:") else host), int(address[1])


def _peer(sock: socket.socket) -> Optional[tuple[str, int]]:
    try:
        return _addr(sock.getpeername())
    except OSError:   # (a listening socket)
        return None


class Watcher:
    """The heartbeat of one rank (see the module's text): one thread talks to the store (its
    calls may block: a stopped store answers nothing, whatever the client's timeout), the
    other judges from what the first last heard, so a store that went silent is seen too."""

    def __init__(self, info: distributed.DistInfo, bound_s: float):
        self.info, self.bound_s = info, bound_s
        self.period = bound_s / BEATS
        #: A gap longer than this in its own wakes, or in the store's answers, is a pause
        #: (this process stopped; the store not answering), not news of the others.
        self._guard = 3 * self.period + 1.0
        self._done = threading.Event()
        self._prefix = (f"trainer/alive/{os.environ.get('TORCHELASTIC_RUN_ID', '')}/"
                        f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/{_fits}/")
        began = time.monotonic()
        self._others = [r for r in range(info.world_size) if r != info.rank]
        self._beats = {r: -1 for r in self._others}      # each one's counter as last read
        self._heard = {r: began for r in self._others}   # when it last moved (or it left)
        self._ends: dict[int, set] = {}                  # its sockets' addresses
        self._linked: set[int] = set()   # ranks this one was seen connected to (those ends)
        self._round: Optional[float] = None              # when the store last answered us
        # (Made here, in the thread that trains: the one it looks at; trainer.stuck. Under
        # NCCL a wait for the others may come at any later sync point of the thread, a
        # loss's float(), an optimizer step: gloo's alone are all in the marked calls.)
        self._sampler = stuck.Sampler(self._guard) if _gloo() else None
        self._said_stuck = False
        self._gone: set[int] = set()   # ranks that left (their fit ended)
        self._threads = [threading.Thread(target=f, name=f"trainer-silence-{f.__name__[1:]}",
                                          daemon=True) for f in (self._talk, self._judge)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """This rank leaves (trained, or ended by an error): the others do not wait on it."""
        self._done.set()
        for thread in self._threads:
            thread.join(1.0)   # (a store call that blocks is left to the daemon thread)
        if self._sampler is not None:
            self._sampler.forget()

    def _store(self) -> Any:
        import torch.distributed as dist

        wait = datetime.timedelta(seconds=min(STORE_WAIT_S, max(self.period, 0.5)))
        return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                             is_master=False, timeout=wait, wait_for_workers=False)

    def _talk(self) -> None:
        """Beat, and read the others' beats, at once and then every period until this rank
        leaves (the first beat at once: its addresses are there for the others early)."""
        store, mine, key = None, None, self._prefix
        while True:
            try:
                store = store or self._store()
                ours = _endpoints()
                now = sorted({json.dumps(e[1]) for e in ours})
                if now != mine:   # (the addresses first: a beat says they are there)
                    store.set(f"{key}ends/{self.info.rank}", json.dumps(now))
                    mine = now
                if not self._stuck():
                    store.add(f"{key}beat/{self.info.rank}", 1)
                for r in self._others:
                    self._read(store, r)
                peers = {e[2] for e in ours}
                self._linked.update(r for r, ends in list(self._ends.items()) if peers & ends)
                now = time.monotonic()
                if self._round is not None and now - self._round > self._guard:
                    # The store answers again after a while: what could not be read meanwhile
                    # says nothing of the others; each gets a whole bound again (attacktr32).
                    self._heard = dict.fromkeys(self._heard, now)
                self._round = now
            except Exception:   # (no answer: no news, the judge decides)
                pass
            if self._done.wait(self.period):
                break
        with contextlib.suppress(Exception):
            if store is not None:
                store.set(f"{key}left/{self.info.rank}", "1")

    def _stuck(self) -> bool:
        """Whether the training thread has been in one call outside any collective for the
        bound (:mod:`trainer.stuck`): then this rank beats no more, and the others take it
        for silent; said once here."""
        if self._sampler is None or self._gone >= set(self._others):
            return False   # (no one waits for it: rank 0's final upload, the others gone)
        seconds = self._sampler.stuck_for()
        if seconds <= self.bound_s:
            self._said_stuck = False
            return False
        if not self._said_stuck:
            self._said_stuck = True
            logger.warning("rank %d: the training thread has been in %s for %s, outside any "
                           "collective (a read from a network mount that stopped answering?): "
                           "this rank's heartbeat stops, and the other ranks end the run as for "
                           "a silent rank", self.info.rank, self._sampler.where(),
                           _took(seconds))
        return True

    def _read(self, store: Any, r: int) -> None:
        """Rank ``r``'s beat: when it moved (0: it has not beaten yet), or when it left."""
        key = self._prefix
        beat = store.add(f"{key}beat/{r}", 0)
        if beat != self._beats[r] and beat > 0:   # (its addresses were set before it)
            ends = [tuple(json.loads(e)) for e in json.loads(store.get(f"{key}ends/{r}"))]
            # Not the store's: under env:// rank 0 hosts it, and its connections from every
            # rank end at MASTER_PORT. Its host answers nothing anyway; shut, each later call
            # of this rank's heartbeat printed torch's warning and C++ frames (attacktr32).
            self._ends[r] = {e for e in ends if e[1] != _store_port()}
            self._beats[r], self._heard[r] = beat, time.monotonic()
        elif store.check([f"{key}left/{r}"]):   # (it ended: its line says why)
            self._heard[r] = time.monotonic()
            self._gone.add(r)

    def _judge(self) -> None:
        """Every period: a rank not heard of for the bound is silent; when the store itself
        stopped answering, its host where that is rank 0 (:func:`_store_says_rank_0`; rank 0
        judges no one then). Nothing is judged before the store first answered (a store this
        rank cannot reach says nothing of the others)."""
        global _woke
        _woke = last = time.monotonic()
        try:
            self._judging(last)
        finally:
            _woke = None

    def _judging(self, last: float) -> None:
        global _woke, _paused
        while not self._done.wait(self.period):
            now = time.monotonic()
            paused, last = now - last, now
            if paused > self._guard:
                _paused = (paused, now)
            _woke = now
            if not distributed.is_initialized():   # (a rank was lost: peer_loss has it)
                return
            if paused > self._guard:
                # This process was stopped itself (a VM paused, Ctrl-Z then fg): what it did
                # not hear meanwhile says nothing of the others; each gets a whole bound again.
                self._heard = dict.fromkeys(self._heard, now)
                self._round = now if self._round is not None else None
            if self._round is None:
                continue
            if now - self._round > self._guard:
                # The store has not answered lately: the others' beats could not be read, and
                # say nothing. Past the bound, its host is taken for silent where that is
                # rank 0 (see _store_says_rank_0); never by rank 0 itself.
                if now - self._round > self.bound_s and self.info.rank != 0 and \
                        _store_says_rank_0(self.info):
                    self._cut(0, now - self._heard[0], self._ends.get(0, set()))
                    return
                continue
            gone, rank = max((now - at, r) for r, at in self._heard.items())
            if gone > self.bound_s:
                self._cut(rank, gone, self._ends.get(rank, set()))
                return

    def _cut(self, rank: int, gone: float, theirs: set) -> None:
        """Rank ``rank`` is silent: the main thread's collective fails (sockets to it shut)."""
        global _silent
        ours = [fd for fd, _, peer in _endpoints() if peer is not None and peer in theirs]
        if rank in self._linked and any(_open(fd) for fd in ours):
            # A process being killed closes its connections only as its exit tears it down,
            # which a loaded machine takes a while to: one more look before it is silent.
            if self._done.wait(max(self.period, 1.0)):
                return   # (this rank left meanwhile)
            ours = [fd for fd, _, peer in _endpoints() if peer is not None and peer in theirs]
        if rank in self._linked and not any(_open(fd) for fd in ours):
            # This rank was connected to it, and is no more: it ended (SIGKILLed, the OOM
            # killer), the kernel closed its connections, and gloo this rank's ends. Not
            # silent: the next collective meets it by itself (trainer.peer_loss: rank 0
            # saves). Taken for silent, this process was ended in whatever it did meanwhile
            # (a long download of the data, an evaluation), nothing saved (attacktr32).
            logger.debug("rank %d unheard for %.1f s, its connections closed: it ended",
                         rank, gone)
            return
        _silent = (rank, gone)   # (before the shutdown: the collective's line reads it)
        cut = 0
        for fd in ours:
            with contextlib.suppress(OSError):
                sock = socket.socket(fileno=os.dup(fd))
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    cut += 1
                finally:
                    sock.close()
        logger.debug("rank %d silent for %.1f s: %d sockets to it shut", rank, gone, cut)
        if _abort_nccl():   # (NCCL's collectives do not end with gloo's sockets)
            cut += 1
        if not cut:   # (its addresses never came: nothing else can end the wait early)
            said = who_and_words(self.info)
            print(f"Error: stopped: {said[1] if said else ''}; nothing could be saved "
                  f"(run the same torchrun command again)", file=sys.stderr, flush=True)
            os._exit(1)


def _gloo() -> bool:
    """Whether the process group is gloo's (CPU ranks)."""
    import torch.distributed as dist

    try:
        return bool(dist.get_backend() == "gloo")
    except Exception:   # (no process group)
        return False


def _open(fd: int) -> bool:
    """Whether the connection ``fd`` still has its peer: a peek that takes nothing (gloo's
    bytes stay) finds no end of stream. A rank SIGKILLed had the kernel close its ends at
    once, but gloo closes this process's own only when it next looks: under load the killed
    rank was still taken for silent (the CI's full run)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True     # (nothing to read: the peer is there, quiet)
    except OSError:
        return False    # (reset: it ended)
    finally:
        sock.close()


def _store_says_rank_0(info: distributed.DistInfo) -> bool:
    """Whether a store that stopped answering says rank 0 did: under env:// it is rank 0's
    (its process hosts it). Under torchrun its agent hosts it: on rank 0's machine, a rank
    still running knows that machine is not frozen, only the agent stopped (a Ctrl-Z in
    torchrun's terminal stops the agent alone: its ranks run in sessions of their own), and
    rank 0 was taken for silent while it trained (attacktr32); from another machine, rank 0's
    machine frozen or cut off is what it most likely is."""
    if not os.environ.get("TORCHELASTIC_RUN_ID"):
        return True
    return info.rank - info.local_rank != 0   # (this machine's first rank is not rank 0)


def _abort_nccl() -> bool:
    """Under NCCL, abort the process group: the collective waited in fails ("NCCL communicator
    was aborted", a lost peer's words). Untried here (two NCCL ranks need two GPUs); where it
    fails, NCCL's own watchdog ends the process at its timeout, as before."""
    import torch.distributed as dist

    try:
        if dist.get_backend() != "nccl":
            return False
        dist.distributed_c10d._abort_process_group()
        return True
    except Exception:   # (no such function in this torch, or the abort failed)
        return False


def _phase(exc: BaseException) -> str:
    """The phase before training the traceback of ``exc`` was in (:data:`PHASES`)."""
    found, tb = "the run started", exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_name
        if name in PHASES and str(tb.tb_frame.f_globals.get("__name__")).startswith("trainer."):
            found = PHASES[name]
        tb = tb.tb_next
    return found


@contextlib.contextmanager
def watch(cfg: Any, info: distributed.DistInfo) -> Iterator[None]:
    """``fit`` under torchrun: a silent rank found (heartbeats), and a rank lost before
    training ended in one line (:class:`~trainer.errors.TrainingInterrupted`, exit 1)."""
    global _silent, _fits, _paused, _bound
    bound = 60 * float(cfg.train.silent_rank_minutes)
    if not info.distributed or not distributed.is_initialized():
        yield
        return
    _silent, _fits, _paused, _bound = None, _fits + 1, (0.0, 0.0), bound
    # (torchrun's store, or env://'s; another init method: no watch. /proc: Linux's sockets)
    where = {"MASTER_ADDR", "MASTER_PORT"} <= set(os.environ) and os.path.isdir("/proc/self/fd")
    watcher = Watcher(info, bound) if bound > 0 and where else None
    if watcher is not None:
        watcher.start()
    try:
        yield
    except RuntimeError as exc:
        from trainer.peer_loss import lost_peer, who_lost

        words = lost_peer(exc)
        if words is None:
            raise
        distributed.lose()
        who, words = who_lost(info, words)
        # (Rank 0 ended with its own line (a lease refused, a config error): the same command
        # is refused again; what that line says comes first. attacklease36)
        again = ("do what they say, then run the torchrun command again" if who == "rank 0"
                 and words.endswith("its own lines say why") else
                 "run the same torchrun command again")
        raise TrainingInterrupted(
            f"{who} was lost while {_phase(exc)}, before training: nothing was trained, "
            f"nothing is saved ({words}; {again})", exit_code=1) from None
    finally:
        if watcher is not None:
            watcher.stop()
