"""Archives of one folder pull whose members overlap (`a.zip` and `b.zip` both hold `ds/x`),
pulled with `pull drive:src DEST -x`: their extractions ran at once, and whichever merged
last held the shared path; one merged between the other's merge and its check failed the
first pull ("... changed while a.zip was extracted ...; run the pull again"). Now they merge
one after the other in the pull's order (tree order: by name), so the later one holds the
path, as the rerun's sibling rule takes it (test_two_archives26), and the first pull ends
well. Archives that share no path still extract and merge at once.

The trigger is the emulator's hold on a.zip's bytes: a.zip cannot finish before b.zip (and
any later archive) has merged, or is waiting for its turn (pullorder27)."""
from __future__ import annotations

import glob
import io
import json
import logging
import os
import signal
import subprocess
import threading
import zipfile

import pytest

from _cli import child_env
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from test_attack15_extract import KILLER, _tar
from test_attack22_stage import _tree
from test_messages_walk20 import _drivestage
from test_two_archives26 import A, B, _members, _zip

C = {"ds/x": b"cccccc", "ds/c": b"c"}
T = {"ds/x": b"ttt", "ds/t": b"t"}


class _Waits(logging.Handler):
    """The archives that wait for their turn to merge (the pull's log says so)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.names: set[str] = set()
        self.changed = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "waits for" in record.getMessage():
            self.names.add(record.getMessage().split(" waits for ")[0].rsplit("/", 1)[-1])
            self.changed.set()


def _extracted(dest, name: str) -> bool:
    """Whether the stamp of ``src/<name>`` says its members are in place."""
    for path in glob.glob(os.path.join(dest, "src", ".drivestage", name + "@*.json")):
        with open(path, encoding="utf-8") as fh:
            if json.load(fh).get("extracted"):
                return True
    return False


def _pull_while_held(emulator, dest, held: str, others: list[str], offset: int = 1,
                     waiting: bool = True):
    """Pull drive:src with ``held``'s bytes stopped at ``offset`` until each of ``others``
    is extracted or (``waiting``) waits for its turn; then let it go. Returns (result,
    what was extracted while ``held`` was held)."""
    hold = emulator.faults.hold(emulator.find(f"src/{held}")["id"], offset, timeout=300)
    waits = _Waits()
    logger = logging.getLogger("drivestage.stage_order")   # the CLI's level is WARNING
    level = logger.level
    logger.addHandler(waits)
    logger.setLevel(logging.INFO)
    out: dict = {}
    runner = threading.Thread(target=lambda: out.update(r=_drivestage(
        "pull", "drive:src", str(dest), "-x")))
    runner.start()
    try:
        assert hold.reached.wait(60)
        done: list[str] = []
        turns = False
        for _ in range(3000):   # each turn: a log record, or a stamp written (polled)
            done = [n for n in others if _extracted(dest, n)]
            turns = all(n in done or (waiting and n in waits.names) for n in others)
            if turns or not runner.is_alive():
                break
            waits.changed.wait(0.02)
            waits.changed.clear()
        assert turns, (done, waits.names)
    finally:
        hold.release()
        runner.join(120)
        logger.removeHandler(waits)
        logger.setLevel(level)
    return out["r"], done


def test_overlapping_archives_merge_in_name_order_and_the_first_pull_ends_well(
        emulator, drive_env, local_state, tmp_path):
    emulator.add_file("src/a.zip", _zip(A))
    emulator.add_file("src/b.zip", _zip(B))
    dest = tmp_path / "d"
    r, _ = _pull_while_held(emulator, dest, "a.zip", ["b.zip"])
    assert r.exit_code == 0, r.output
    staged = _members(dest)
    assert {k: v[0] for k, v in staged.items()} == {
        "src/ds/a": b"a", "src/ds/b": b"b", "src/ds/x": b"bb"}   # b.zip merged last
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0 and "2 files (2 already staged)" in r.output, r.output
    assert _members(dest) == staged


def test_a_third_archive_and_a_streamed_tar_wait_their_turn_too(
        emulator, drive_env, local_state, tmp_path):
    """A tar.gz's members are known only once it has all arrived (read as a stream)."""
    emulator.add_file("src/a.zip", _zip(A))
    emulator.add_file("src/b.tar.gz", _tar(T, True))
    emulator.add_file("src/c.zip", _zip(C))
    dest = tmp_path / "d"
    r, _ = _pull_while_held(emulator, dest, "a.zip", ["b.tar.gz", "c.zip"])
    assert r.exit_code == 0, r.output
    staged = _members(dest)
    assert {k: v[0] for k, v in staged.items()} == {
        "src/ds/a": b"a", "src/ds/t": b"t", "src/ds/c": b"c", "src/ds/x": b"cccccc"}
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0 and "3 files (3 already staged)" in r.output, r.output
    assert _members(dest) == staged


def test_archives_that_share_no_path_do_not_wait_for_each_other(
        emulator, drive_env, local_state, tmp_path):
    """b.zip is merged while a.zip still downloads: only its member list (its central
    directory, read first) was waited for."""
    filler = os.urandom(200 << 10)   # the central directory's request ends before byte 1000
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("one/filler", filler)
        zf.writestr("one/x", b"aaaa")
    emulator.add_file("src/a.zip", buf.getvalue())
    emulator.add_file("src/b.zip", _zip({"two/x": b"bb"}))
    dest = tmp_path / "d"
    r, done = _pull_while_held(emulator, dest, "a.zip", ["b.zip"], offset=1000,
                               waiting=False)   # (it may wait for a.zip's member list)
    assert r.exit_code == 0, r.output
    assert done == ["b.zip"]       # extracted while a.zip was held
    got = _tree(dest)
    assert got["src/one/x"] == b"aaaa" and got["src/two/x"] == b"bb"


#: Moments a pull of a.zip and b.zip (which share `ds/x`) is SIGKILLed at: an audit event,
#: what its arguments hold, and which one of those (see test_attack15_extract.KILLER).
_KILLS = {
    "a.zip merged, not yet stamped": ("os.rename", "a.zip@", 2),
    "a.zip stamped, b.zip's merge not begun": ("os.rename", "('b', 'b'", 1),
    "b.zip's merge half done": ("os.rename", "('x', 'x'", 1),
}


@pytest.mark.parametrize("moment", sorted(_KILLS))
def test_a_pull_killed_between_the_two_extractions_settles_on_a_rerun(
        moment, emulator, drive_env, local_state, tmp_path):
    event, needle, n = _KILLS[moment]
    emulator.add_file("src/a.zip", _zip(A))
    emulator.add_file("src/b.zip", _zip(B))
    dest = tmp_path / "d"
    proc = cli_server().popen([event, needle, str(n), str(tmp_path / "count"), "pull",
                               "drive:src", str(dest), "-x", "-q"], script=KILLER,
                              env=child_env(emulator), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, err.decode()[-3000:])
    for rel, data in _tree(dest).items():   # nothing truncated under a final name
        if rel.startswith("src/ds/"):
            assert data in (A.get(rel[4:]), B.get(rel[4:])), rel
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    staged = _members(dest)
    assert {k: v[0] for k, v in staged.items()} == {
        "src/ds/a": b"a", "src/ds/b": b"b", "src/ds/x": b"bb"}
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0 and "2 files (2 already staged)" in r.output, r.output
    assert _members(dest) == staged


def test_a_ctrl_c_while_an_archive_waits_its_turn_stops_the_pull(
        emulator, drive_env, local_state, tmp_path):
    """b.zip waits for a.zip, whose bytes are held: a Ctrl-C then stops the pull (exit 130)
    once a.zip's stalled request times out, without trying it again, and the rerun settles
    as the first pull would have."""
    emulator.add_file("src/a.zip", _zip(A))
    emulator.add_file("src/b.zip", _zip(B))
    hold = emulator.faults.hold(emulator.find("src/a.zip")["id"], 1, timeout=300)
    dest = tmp_path / "d"
    # a.zip's stalled stream ends at its read timeout, and is not tried again
    env = dict(child_env(emulator), DRIVESTAGE_HTTP_TIMEOUT="5")
    proc = cli_server().popen(["-v", "pull", "drive:src",
                               str(dest), "-x"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:   # the log says b.zip waits for a.zip
            seen.append(line)
            if "drive:src/b.zip waits for drive:src/a.zip" in line:
                break
        assert hold.reached.wait(60) and not hold.released, "".join(seen)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        hold.release()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Interrupted." in err
    # It waited through every retry of the stalled stream, each a read timeout: 7 x 120 s
    # by default, "waiting for the transfers under way to stop".
    assert "retry 2/" not in err, err
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    assert {k: v[0] for k, v in _members(dest).items()} == {
        "src/ds/a": b"a", "src/ds/b": b"b", "src/ds/x": b"bb"}
    assert not [n for n in os.listdir(dest / "src") if n.startswith(".drivestage-extract-")]


def test_archives_in_nested_folders_that_land_on_one_path_settle(
        emulator, drive_env, local_state, tmp_path):
    """`a.zip` holds `sub/x` and `sub/b.zip` holds `x`: both land on `src/sub/x`. Each was
    judged by its own records alone (the sibling rule took only archives of one Drive
    folder), so every rerun extracted one of them again and the path's bytes went back and
    forth (pullorder27). The later one in the pull's order (tree order: sub/b.zip) holds
    it, and a rerun is a no-op."""
    emulator.add_file("src/a.zip", _zip({"sub/x": b"aaaa", "sub/a": b"a"}))
    emulator.add_file("src/sub/b.zip", _zip({"x": b"bb"}))
    dest = tmp_path / "d"
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    staged = {rel: data for rel, data in _tree(dest).items() if not rel.endswith(".zip")}
    assert staged == {"src/sub/x": b"bb", "src/sub/a": b"a"}
    inode = os.lstat(dest / "src" / "sub" / "x").st_ino
    for _ in range(2):
        r = _drivestage("pull", "drive:src", str(dest), "-x")
        assert r.exit_code == 0 and "2 files (2 already staged)" in r.output, r.output
        assert os.lstat(dest / "src" / "sub" / "x").st_ino == inode


def test_a_repair_of_the_earlier_archive_leaves_the_shared_path_to_the_later_one(
        emulator, drive_env, local_state, tmp_path):
    """`ds/a` (a.zip's alone) deleted by hand: the rerun extracts a.zip again, which writes
    `ds/x` too (b.zip's bytes there were not a.zip's own). b.zip was then judged staged,
    because a.zip had extracted `ds/x`, and the path stayed a.zip's for good. A member counts
    in place through another archive only when that one comes later in the pull's order, and
    b.zip is judged once a.zip is done: it extracts `ds/x` again."""
    emulator.add_file("src/a.zip", _zip(A))
    emulator.add_file("src/b.zip", _zip(B))
    dest = tmp_path / "d"
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    os.unlink(dest / "src" / "ds" / "a")
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    staged = _members(dest)
    assert {k: v[0] for k, v in staged.items()} == {
        "src/ds/a": b"a", "src/ds/b": b"b", "src/ds/x": b"bb"}
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0 and "2 files (2 already staged)" in r.output, r.output
    assert _members(dest) == staged
