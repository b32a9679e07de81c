"""A folder pull -x SIGKILLed after the later archive's merge, before its stamp (rerun35,
found by attackpull35).

``drive:src`` holds ``a.zip`` and ``b.zip``, both with ``ds/shared.txt``: b, later by name,
wins it. One archive gets a new version on Drive; the next pull extracts a, then b again,
and is killed right after b's merge, before b's stamp records it (b's stamp then says
"downloaded", not extracted; b's merge journal names the new ``shared.txt``). The rerun's
a took ``shared.txt`` for nobody's (b's stamp was no extraction's): it wrote it back, said
``put back 1 member of drive:src/a.zip that changed since drivestage extracted it`` (no
one had touched it), and b, which had judged its members before its turn, could then fail
``… shared.txt changed while drive:src/b.zip was extracted (another program or pull wrote
there)`` (attackpull35's probe). Now the later archive's live journal rows count as what
it wrote there (:func:`drivestage.extract.journals.journaled`): a leaves the path to b.
The rerun must finish without a word about a change, leaving DEST as an uninterrupted pull
does, and the one after stage nothing. The mirror case (b updated, a not) is played too, and
both updated (a updated alone now leaves the path b's stamp holds: exclude37).
The kill is played at b's stamp write and the reruns' interleavings by events (fault hooks
in a child), not after a sleep."""
from __future__ import annotations

import io
import signal
import zipfile

import pytest

import _cli
from _cli import child_env
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (the fork server, started before the leak check)
from test_attack15_extract import _replace_on_drive
from test_attack22_stage import _tree

KILL_AT_B_STAMP = r"""
import os, signal, sys
from drivestage import stamps
write = stamps.write

def killing_write(dest, stamp):
    if stamp.get("file") == "b.zip" and stamp.get("extracted"):
        os.kill(os.getpid(), signal.SIGKILL)   # b merged, its stamp not yet written
    write(dest, stamp)

stamps.write = killing_write
sys.argv = ["drivestage"] + sys.argv[1:]
from drivestage.entry import main
main()
"""

#: The rerun, with b deciding what of it is in place before a merges (as a folder pull's
#: archives may: b decides, then waits for its turn): b's check of its records is held
#: until then by a's extraction waiting for it (an event, not a sleep).
B_DECIDES_FIRST = r"""
import sys, threading
from drivestage import stage_extraction
decided = threading.Event()
in_place, step = stage_extraction.in_place, stage_extraction.Extraction._step

def noting_in_place(dest, records, stamp):
    kept = in_place(dest, records, stamp)
    if stamp.get("file") == "b.zip":
        decided.set()
    return kept

def held_step(self, target, action, unpacking):
    if target.endswith("a.zip") and not decided.wait(60):
        print("b never decided before a merged", file=sys.stderr)
        raise SystemExit(9)
    return step(self, target, action, unpacking)

stage_extraction.in_place = noting_in_place
stage_extraction.Extraction._step = held_step
sys.argv = ["drivestage"] + sys.argv[1:]
from drivestage.entry import main
main()
"""

#: The rerun, with a's extraction over before b's stamp is rewritten for its own (b's
#: "downloaded" stamp held until then: an event, not a sleep).
A_FIRST = r"""
import sys, threading
from drivestage import stage_file, stamps
done = threading.Event()
write, stage = stamps.write, stage_file.FileStager.stage

def held_write(dest, stamp):
    if stamp.get("file") == "b.zip" and not done.is_set() and not done.wait(60):
        print("a was never staged before b's stamp", file=sys.stderr)
        raise SystemExit(9)
    write(dest, stamp)

def noting_stage(self, entry):
    try:
        return stage(self, entry)
    finally:
        if entry.name == "a.zip":
            done.set()

stamps.write = held_write
stage_file.FileStager.stage = noting_stage
sys.argv = ["drivestage"] + sys.argv[1:]
from drivestage.entry import main
main()
"""

A1 = {"ds/a.txt": b"a1" * 300, "ds/shared.txt": b"from a1", "ds/aold.txt": b"aold"}
A2 = {"ds/a.txt": b"a2" * 400, "ds/shared.txt": b"from a2!", "ds/anew/x.txt": b"anew"}
B1 = {"ds/b.txt": b"b" * 100, "ds/shared.txt": b"from b"}
B2 = {"ds/b.txt": b"B" * 120, "ds/shared.txt": b"from b2", "ds/bnew.txt": b"bnew"}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


@pytest.mark.parametrize("rerun", ["a first", "b decides first"])
@pytest.mark.parametrize("updated", ["a.zip", "b.zip", "both"])
def test_a_rerun_after_a_kill_between_the_later_archives_merge_and_stamp_finishes(
        updated, rerun, emulator, local_state, monkeypatch, tmp_path):
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    emulator.add_file("src/a.zip", _zip(A1))
    emulator.add_file("src/b.zip", _zip(B1))
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "drive:src", str(dest), "-x", "-q")
    assert code == 0, err
    if updated in ("a.zip", "both"):
        _replace_on_drive("src/a.zip", _zip(A2), tmp_path)
    if updated in ("b.zip", "both"):
        _replace_on_drive("src/b.zip", _zip(B2), tmp_path)

    # What an uninterrupted pull leaves, in a DEST of its own staged the same way.
    whole = tmp_path / "whole"
    code, _, err = _cli.run("pull", "drive:src", str(whole), "-x", "-q")
    assert code == 0, err
    want = _tree(whole)
    later = B1 if updated == "a.zip" else B2
    assert want["src/ds/shared.txt"] == later["ds/shared.txt"]

    proc = cli_server().run(["pull", "drive:src", str(dest), "-x", "-q"],
                            script=KILL_AT_B_STAMP, env=child_env(emulator), timeout=120)
    # a.zip updated alone leaves the path b.zip's stamp holds (exclude37: stage_order.Turn.
    # held): b is not extracted again, and no kill comes. b updated (a too: a writes the
    # shared path, b's stamp being of another version): b's merge is killed.
    assert proc.returncode == (0 if updated == "a.zip" else -signal.SIGKILL), \
        proc.stderr.decode()[-3000:]

    script = A_FIRST if rerun == "a first" else B_DECIDES_FIRST
    rerun = cli_server().run(["pull", "drive:src", str(dest), "-x", "-q"], script=script,
                             env=child_env(emulator), timeout=120)
    assert rerun.returncode == 0, rerun.stderr.decode()[-3000:]
    # (nobody changed shared.txt: b's killed merge wrote it, as b's turn does)
    assert b"put back" not in rerun.stderr, rerun.stderr.decode()[-3000:]
    assert _tree(dest) == want
    code, _, err = _cli.run("pull", "drive:src", str(dest), "-x")
    assert code == 0 and "2 files (2 already staged)" in err, err
    assert _tree(dest) == want
