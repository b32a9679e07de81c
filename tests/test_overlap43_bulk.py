"""A ``drivestage pull`` that is the whole process runs its bulk steps (the Drive client's
imports, a zip's member list, the records after the extraction) without the cyclic
collector and freezes what they made (overlap43: 4 young collections, 0.04-0.09 s of one
core in a 20,000-member pull's serial phases, gone); a library caller's collector is left
exactly as it was."""
from __future__ import annotations

import gc
import sys
import threading

import pytest

from drivestage import heap


@pytest.fixture
def collector_back():
    """The collector as the test process had it, whatever a test froze or disabled."""
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    yield
    gc.unfreeze()   # (what the test froze, and the suite's own frozen at collection)
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


def test_bulk_holds_the_collector_once_per_process_and_gives_it_back(monkeypatch,
                                                                     collector_back):
    frozen = gc.get_freeze_count()
    with heap.bulk():   # not a pull's own process: nothing changes
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen

    monkeypatch.setattr(heap, "_BULK", True)
    threshold = gc.get_threshold()
    with pytest.raises(KeyError):   # a step that raises gives it back all the same
        with heap.bulk():
            assert not gc.isenabled()
            raise KeyError("x")
    assert gc.isenabled() and gc.get_threshold() == threshold
    assert gc.get_freeze_count() > frozen   # what the step made is out of the collector's way

    # Two threads' steps overlap: the collector comes back as the last one ends.
    inside, first_done = threading.Event(), threading.Event()

    def other() -> None:
        with heap.bulk():
            inside.set()
            assert first_done.wait(10)
            assert not gc.isenabled()

    with heap.bulk():
        t = threading.Thread(target=other)
        t.start()
        assert inside.wait(10)
    assert not gc.isenabled()   # the other step still runs
    first_done.set()
    t.join(10)
    assert not t.is_alive() and gc.isenabled()

    gc.unfreeze()
    gc.disable()   # the caller's own choice: kept, and nothing frozen
    with heap.bulk():
        pass
    assert not gc.isenabled() and gc.get_freeze_count() == 0


def test_a_pull_freezes_its_bulk_steps_only_in_its_own_process(emulator, drive_env,
                                                               local_state, tmp_path,
                                                               monkeypatch, collector_back):
    import drivestage
    from _archives import a_fixed_zip

    members = {f"ds/{i:03d}.txt": b"%d\n" % i for i in range(40)}
    emulator.add_file("d/a.zip", a_fixed_zip(members))
    sites: list[str] = []
    freeze = gc.freeze

    def noted() -> None:   # the step that ends: bulk's caller, above contextlib's __exit__
        sites.append(sys._getframe(3).f_code.co_name)
        freeze()

    monkeypatch.setattr(gc, "freeze", noted)
    gc.unfreeze()
    threshold = gc.get_threshold()

    # A library caller (a notebook, the trainer): its collector as it was, nothing frozen.
    drivestage.pull("drive:d/a.zip", str(tmp_path / "lib"), extract=True, quiet=True)
    assert sites == [] and gc.get_freeze_count() == 0
    assert gc.isenabled() and gc.get_threshold() == threshold

    # The `drivestage pull` program (cli.pull sets it): each bulk step frozen as it ends.
    monkeypatch.setattr(heap, "_BULK", True)
    drivestage.pull("drive:d/a.zip", str(tmp_path / "cli"), extract=True, quiet=True)
    assert sorted(sites) == ["__call__", "follow_zip", "open_store"]
    assert gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_threshold() == threshold
    for name, data in members.items():
        assert (tmp_path / "cli" / name).read_bytes() == data
