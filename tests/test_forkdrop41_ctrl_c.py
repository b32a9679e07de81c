"""A Ctrl-C at fork_drop's ``forget`` while a pull's state lock is let go (a sweep of
test_interrupt_commands landed there in a full run): the lock's descriptor stayed open and
its flock held, so the rerun in the same process (a notebook's next cell) said "another
pull … is running; waiting for it" and waited for ever. The close no longer waits on the
note's removal (a note left behind is no harm: a fork's child checks the file is still the
one noted before it points its number at the null device)."""
from __future__ import annotations

import fcntl
import os

import pytest

from drivestage import fork_drop
from drivestage.extract import statedir


def _open_to(path: str) -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(path):
                out.append(fd)
        except OSError:
            pass
    return out


@pytest.mark.parametrize("transient", [False, True])
def test_a_ctrl_c_at_forget_leaves_the_state_lock_closed_and_free(tmp_path, monkeypatch,
                                                                  transient):
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(statedir, "forget", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with statedir.state_lock(str(tmp_path), "set.zip.lock", None, transient=transient):
            pass
    assert _open_to(str(tmp_path)) == []
    monkeypatch.undo()
    with statedir.state_lock(str(tmp_path), "set.zip.lock", None) as mine:
        assert mine   # taken at once: no holder left behind


def test_a_note_left_behind_spares_another_file_at_its_number_in_a_fork(tmp_path):
    """A descriptor noted, closed without forget (the Ctrl-C above), its number reused by
    another file: a forked child keeps that file, not the null device."""
    first = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    fork_drop.drop_in_forks(first)
    os.close(first)
    other = os.open(tmp_path / "data", os.O_RDWR | os.O_CREAT)
    try:
        assert other == first   # (the lowest free number: the same)
        os.write(other, b"parent")
        pid = os.fork()
        if pid == 0:   # the child: writes through the number it inherited
            code = 0
            try:
                os.write(other, b"+child")
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        fork_drop.forget(first)
        os.close(other)
    assert (tmp_path / "data").read_bytes() == b"parent+child"
