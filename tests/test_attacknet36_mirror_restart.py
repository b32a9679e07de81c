"""net36 made a Ctrl-C that lands as a mirror's thread starts tell that thread to end
before its first push (``m = Mirror(...).start()``: ``m`` was never set). Where the user
held the mirror (``m = Mirror(...)`` in one cell, ``m.start()`` in the next) and ran
``m.start()`` again after the Ctrl-C, the obvious thing: it returned at once, the mirror
"started" (its thread was there, told to end), and nothing was ever pushed, not even by
``m.stop()``'s final flush (found by attacknet36)."""
from __future__ import annotations

import hashlib
import signal

import pytest

import drivestage
from drivestage.errors import MirrorError
from test_net36_thread_starts import _CtrlCAtStart, fast  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads")


def test_a_mirror_started_again_after_a_ctrl_c_at_its_start_says_it_is_stopped(
        fast, emulator, tmp_path, monkeypatch):
    """The second ``m.start()`` says, in one line, that this mirror was stopped and a new
    one must be made; the new one pushes."""
    from drivestage.mirror import Mirror

    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    src = tmp_path / "run"
    src.mkdir()
    (src / "a.txt").write_bytes(b"hello")
    emulator.add_folder("runs")
    store = drivestage.connect()
    m = Mirror(str(src), (store, "runs"), every=0.05)
    with monkeypatch.context() as patch:
        _CtrlCAtStart(patch, 1, "drivestage-mirror")
        with pytest.raises(KeyboardInterrupt):
            m.start()

    with pytest.raises(MirrorError) as err:
        m.start()

    assert str(err.value) == ("this mirror was stopped: a Ctrl-C came as it started; "
                              "make a new one (Mirror(...).start())")
    assert store.list(store.resolve("runs")) == []
    m2 = Mirror(str(src), (store, "runs"), every=60).start()
    m2.stop()
    assert [(e.name, e.md5) for e in store.list(store.resolve("runs"))] == [
        ("a.txt", hashlib.md5(b"hello").hexdigest())]
