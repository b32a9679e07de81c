"""A folder pull SIGKILLed while it fetches the small archives it now schedules after a big
one (`a.zip` big, `b.zip` and `c.zip` small, all holding `ds/x`, `--chunk-size 64KiB`):
the rerun, with or without the option, settles on the last by name (`c.zip`) and the next
one stages nothing (attackorder35: held up). The kill comes at a file event (an audit
hook), not after a sleep."""
from __future__ import annotations

import signal

import pytest

import _cli
from _forkcli import PIPE, cli_server
from _cli import child_env
from test_attack15_extract import KILLER
from test_attack22_stage import _tree
from test_chunkdet35_order import BIG, _zip

_KILLS = {
    "a.zip's download begun": ("open", "a.zip", 1),
    "a.zip stamped, b.zip's download begun": ("open", "b.zip", 1),
    "b.zip merged, c.zip's download begun": ("open", "c.zip", 1),
    "c.zip's merge half done": ("os.rename", "('x', 'x'", 2),
}


@pytest.mark.parametrize("rerun", [(), ("--chunk-size", "64KiB")])
@pytest.mark.parametrize("moment", sorted(_KILLS))
def test_a_pull_killed_while_it_fetches_after_the_big_archive_settles(
        moment, rerun, emulator, local_state, monkeypatch, tmp_path):
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    for name, extra in [("a", {"ds/big": BIG}), ("b", {}), ("c", {})]:
        emulator.add_file(f"F/{name}.zip", _zip({"ds/x": name.encode() * 3,
                                                 f"ds/{name}": b"1", **extra}))
    dest = tmp_path / "d"
    event, needle, n = _KILLS[moment]
    # (forked with drivestage imported, tests/_forkcli.py: a fresh interpreter's start was
    # half of each case)
    proc = cli_server().popen([event, needle, str(n), str(tmp_path / "count"), "pull",
                               "drive:F", str(dest), "-x", "-q", "--chunk-size", "64KiB",
                               "-j", "4"], script=KILLER, env=child_env(emulator),
                              stdout=PIPE, stderr=PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, err.decode()[-3000:])
    for rel, data in _tree(dest).items():   # nothing truncated under a final name
        if rel.startswith("F/ds/x"):
            assert data in (b"aaa", b"bbb", b"ccc"), rel
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", *rerun)
    assert code == 0, err
    got = {k: v for k, v in _tree(dest).items() if k.startswith("F/ds/")}
    assert got == {"F/ds/x": b"ccc", "F/ds/a": b"1", "F/ds/b": b"1", "F/ds/c": b"1",
                   "F/ds/big": BIG}
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "--chunk-size", "64KiB")
    assert code == 0 and "3 files (3 already staged)" in err, err
    assert {k: v for k, v in _tree(dest).items() if k.startswith("F/ds/")} == got
