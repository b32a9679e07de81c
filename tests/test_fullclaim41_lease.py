"""room41: a trainer started on a Drive whose storage is full makes its own room.

Its lease claim is a file of a few hundred bytes, which a full Drive refuses (403
storageQuotaExceeded); the lease stayed not taken, no removal went (guards40), and the room
drive.keep_last makes is removals: the user had to free space by hand (attackguard40). Now the
claim is a PUBLIC property of the run folder where the file's create is refused for storage
and no claim file is listed (trainer.lease_props): the lease is held, the push makes its
room. Two trainers on one folder never both hold it: a second one watches the property and is
refused; of two that write their properties at the same moment one holds (leasefull42: both
stood back); a live claim file listed keeps the fallback off; a Drive that refuses the
property's write too leaves the line attackguard40 wrote, and nothing is removed.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import logging
import threading

import pytest

from _lease_pairs import on_drive, save_pair
from test_attackguard40_full import FULL
from test_lease39_pending_guard import DEST, _claims

PROPERTY = "the run's lease is claimed by a property of the folder"
STANDING = "standing back for"
#: (The smaller token's, where the other's property is there: it waits for it to go.)
WAITING = "claimed the run's lease at the same moment; waiting"
#: (Each listed no claim: neither writes before both did, else one watched the other's,
#: not renewed while its thread waited, took it over as stale, and held: attacklease41.)
CLAIMING = ": claiming generation "


def _props(emulator) -> list[str]:
    """The lease properties on the run folder (drive:runs/exp), PUBLIC ones only."""
    [folder] = [f for f in emulator.files() if f["title"] == "exp" and not f["labels"]["trashed"]]
    return sorted(p["key"] for p in emulator.properties_of(folder["id"])
                  if p["key"].startswith("trainer-lease-") and p["visibility"] == "PUBLIC")


def _full(emulator, tmp_path, monkeypatch, free: int = 100):
    """An earlier run's three checkpoint pairs on Drive (no lease), then Drive's storage
    full to ``free`` bytes (no claim file fits): (the bytes used, what is on Drive)."""
    from trainer.drive import DriveFolder

    for epoch in (1, 2, 3):
        save_pair(tmp_path / "before", f"epoch_00{epoch}.pt", epoch)
    DriveFolder(DEST, str(tmp_path / "before")).push()   # (an earlier run's, no lease)
    used = sum(int(f.get("fileSize", 0)) for f in emulator.files())
    emulator.quota_bytes = emulator.store.quota_bytes = used + free
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    return used, on_drive(emulator)


def _trainer(tmp_path, name: str, epoch: int, minutes: float = 0.02, *more: str):
    """A trainer's drive.logs as held_folder takes it (its lease), with ``epoch``'s pair in
    its run folder to push (``more``: config overrides): (the folder, the pair's md5s)."""
    from trainer.config import load_config
    from trainer.lease import held_folder
    from trainer.stopping import StopFlag

    run = tmp_path / name
    ours = save_pair(run, f"epoch_{epoch:03d}.pt", epoch)
    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={run}",
                             f"drive.lease_minutes={minutes}", "drive.keep_last=1",
                             "drive.keep_best=0", *more])
    return held_folder(cfg, StopFlag(60.0)), ours


def test_a_trainer_on_a_full_drive_claims_by_a_property_and_makes_its_own_room(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch, caplog):
    from trainer.lease import release_all

    _full(emulator, tmp_path, monkeypatch)
    try:
        with caplog.at_level(logging.WARNING, logger="trainer.lease"):
            folder, ours = _trainer(tmp_path, "run", 4)
        assert folder.lease is not None and not folder.lease.pending
        [said] = [r.getMessage() for r in caplog.records if PROPERTY in r.getMessage()]
        assert said.startswith("drive:runs/exp: Drive's storage is full (its claim file of ")
        assert _claims(emulator) == [] and _props(emulator) == [folder.lease.name[:-5]]
        folder.push()   # (the room drive.keep_last=1 makes: the earlier run's three pairs)
        assert on_drive(emulator) == {n: [m] for n, m in ours.items()}
        folder.lease.check()   # (renewed in place: still the one property)
        assert _props(emulator) == [folder.lease.name[:-5]]
    finally:
        release_all()
    assert _props(emulator) == [] and _claims(emulator) == []


def test_a_second_trainer_is_refused_while_the_first_holds_by_a_property(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    """The second one's Drive has room for a claim file (another account, or space freed):
    it reads the folder's properties too, watches the first's renewals, and is refused."""
    from trainer.errors import LeaseHeldError
    from trainer.lease import release_all

    used, _ = _full(emulator, tmp_path, monkeypatch)
    try:
        first, ours = _trainer(tmp_path, "first", 4)
        emulator.quota_bytes = emulator.store.quota_bytes = used + 100_000
        with pytest.raises(LeaseHeldError, match="holds its lease"):
            _trainer(tmp_path, "second", 5)
        emulator.quota_bytes = emulator.store.quota_bytes = used + 100
        first.push()
        assert on_drive(emulator) == {n: [m] for n, m in ours.items()}
        assert _claims(emulator) == [] and _props(emulator) == [first.lease.name[:-5]]
    finally:
        release_all()


class _AtTheSameMoment(logging.Handler):
    """Holds each trainer's thread at each of ``lines`` (first seen in that thread) until
    the other's thread is there too: at "claiming" both listed before either writes; at
    "claimed by a property" (written, not yet settled)
    both claims are on Drive before either lists them; at "standing back" both listed
    before either removes its own; at "not taken" (its property removed) neither lists
    the other's before it is gone. A thread that never gets to a line breaks the wait."""

    def __init__(self, *lines: "str | tuple[str, ...]") -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines   # (a tuple: either of its lines, one thread each)
        self.barriers = {line: threading.Barrier(2, timeout=60) for line in self.lines}
        self.met: set[tuple[int, "str | tuple[str, ...]"]] = set()

    def handle(self, record: logging.LogRecord) -> bool:   # (not emit: under the handler's lock)
        for line in self.lines:
            said = any(one in record.getMessage()
                       for one in (line if isinstance(line, tuple) else (line,)))
            if said and (threading.get_ident(), line) not in self.met:
                self.met.add((threading.get_ident(), line))
                self.barriers[line].wait()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        pass


def _race(tmp_path, targets, *lines: "str | tuple[str, ...]") -> dict[str, object]:
    """Run each of ``targets`` (name -> a call) in a thread of its own, held at each of
    ``lines`` until the other is there too: name -> what the call returned, or raised."""
    held = _AtTheSameMoment(*lines)
    lease_log = logging.getLogger("trainer.lease")
    lease_log.addHandler(held)
    lease_log.setLevel(logging.DEBUG)
    got: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            got[name] = targets[name]()
        except Exception as exc:   # noqa: BLE001 (what each got is asserted by the caller)
            got[name] = exc
    try:
        threads = [threading.Thread(target=run, args=(n,)) for n in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)  # (the barriers wait up to 60 s each on a loaded machine)
        assert not any(t.is_alive() for t in threads)
    finally:
        lease_log.removeHandler(held)
    return got


def test_two_trainers_that_claim_by_property_at_the_same_moment_one_holds(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    """Both properties written before either reads them, both read before either acts
    (leasefull42; room41: both stood back, both trainers refused at their start): the smaller token holds (it waits for the
    other to stand back), the other is refused naming it; only the holder's property is left,
    and its push makes its room."""
    from trainer.errors import LeaseHeldError
    from trainer.lease import release_all

    _, before = _full(emulator, tmp_path, monkeypatch)
    pairs: dict[str, dict[str, str]] = {}

    def start(name: str, epoch: int):
        folder, pairs[name] = _trainer(tmp_path, name, epoch, minutes=0.1)   # (6 s periods)
        return folder
    try:
        got = _race(tmp_path, {"a": lambda: start("a", 4), "b": lambda: start("b", 5)},
                    CLAIMING, PROPERTY, (STANDING, WAITING))
        [won] = [n for n in got if not isinstance(got[n], Exception)]
        [lost] = [n for n in got if n != won]
        assert isinstance(got[lost], LeaseHeldError), got
        winner = got[won]
        assert _props(emulator) == [winner.lease.name[:-5]] and _claims(emulator) == []
        assert on_drive(emulator) == before
        assert "holds its lease" in str(got[lost])
        winner.push()
        assert on_drive(emulator) == {n: [m] for n, m in pairs[won].items()}
    finally:
        release_all()


def test_two_pending_trainers_that_try_at_the_same_moment_one_takes_it_the_other_stops(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    """Both started while Drive failed the claim's write (pending); Drive back, but full, they
    try at the same moment (each push's check), both properties written before either reads,
    both read before either acts:
    one takes the lease (leasefull42; room41: both stood back), the other finds it held and
    stops (lost), nothing removed by it. The holder's push makes its room; the other's
    pushes nothing: only the holder's files are left."""
    from trainer.errors import LeaseLostError
    from trainer.lease import release_all

    _, before = _full(emulator, tmp_path, monkeypatch)
    emulator.faults.inject(method="POST", path="/upload/", status=503, times=None)
    try:
        a, ours_a = _trainer(tmp_path, "a", 4, minutes=0.1)
        b, ours_b = _trainer(tmp_path, "b", 5, minutes=0.1)
        emulator.faults.clear()
        assert a.lease.pending and b.lease.pending
        got = _race(tmp_path, {"a": a.lease.check, "b": b.lease.check}, CLAIMING, PROPERTY,
                    (STANDING, WAITING))
        [won] = [n for n in got if got[n] is None]
        lost = "b" if won == "a" else "a"
        assert isinstance(got[lost], LeaseLostError), got
        holder, other = (a, b) if won == "a" else (b, a)
        ours = ours_a if won == "a" else ours_b
        assert not holder.lease.pending and holder.lease.lost is None
        assert _props(emulator) == [holder.lease.name[:-5]] and on_drive(emulator) == before
        holder.push()
        assert on_drive(emulator) == {n: [m] for n, m in ours.items()}
        with pytest.raises(LeaseLostError):
            other.push()
        assert on_drive(emulator) == {n: [m] for n, m in ours.items()}
        assert _props(emulator) == [holder.lease.name[:-5]] and _claims(emulator) == []
    finally:
        release_all()


def test_a_live_claim_file_keeps_the_property_off_even_for_a_take_over(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    """An earlier trainer's claim file, LIVE (renewed: it trains, and checks by its listing
    alone while its lease is proved, which shows no property): a --take-over writes no
    property beside it; it takes nothing, pushes nothing, removes nothing, and its stop says
    why and what to do (leasefull42: it said Drive "was down"). (A STALE one is taken over
    by a property: test_leasefull42_stale_file.)"""
    from trainer.errors import LeaseLostError
    from trainer.lease import release_all

    used, _ = _full(emulator, tmp_path, monkeypatch, free=100_000)
    old, _ = _trainer(tmp_path, "old", 1, minutes=1)   # (renewed: live for 2.5 min)
    [left] = _claims(emulator)
    emulator.quota_bytes = emulator.store.quota_bytes = \
        sum(int(f.get("fileSize", 0)) for f in emulator.files()) + 100
    before = on_drive(emulator)
    try:
        folder, _ = _trainer(tmp_path, "run", 4, 1, "drive.take_over=true")
        assert folder.lease.pending and _props(emulator) == []
        with pytest.raises(LeaseLostError) as lost:
            folder.push()
        assert str(lost.value).startswith(f"{old.lease.holder().who} holds the run's lease on "
                                          "drive:runs/exp (renewed "), str(lost.value)
        assert ("; held before this trainer could claim it: Drive's storage was full at its "
                "start, its claim file did not fit, and a live claim file's lease is not taken "
                "over by a property (that trainer reads none); free some space on Drive first)"
                ) in str(lost.value)   # (it said Drive "was down at its start")
        assert on_drive(emulator) == before and _claims(emulator) == [left]
        assert _props(emulator) == [] and old.lease.lost is None
    finally:
        release_all()
    assert used > 0


def test_a_drive_that_refuses_the_property_too_says_so_and_removes_nothing(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    from trainer.errors import LeaseNotTakenError
    from trainer.lease import release_all

    used, before = _full(emulator, tmp_path, monkeypatch, free=0)
    emulator.full_refuses_property_writes = True
    try:
        folder, _ = _trainer(tmp_path, "run", 4)
        assert folder.lease.pending
        for _ in range(2):
            with pytest.raises(LeaseNotTakenError) as caught:
                folder.push()
            assert str(caught.value) == FULL
            assert on_drive(emulator) == before and _claims(emulator) == [] \
                and _props(emulator) == []
    finally:
        release_all()
    assert used > 0
