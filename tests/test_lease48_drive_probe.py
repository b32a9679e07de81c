"""lease48: scripts/drive_probe.py, the questions about real Drive the emulator cannot settle
(etags, If-Match on patches and trash, properties merged or replaced, other apps' PRIVATE
ones), run end to end over HTTP against the emulator: the lines its behaviour gives, nothing
outside the scratch folder changed, the scratch folder gone (also on Ctrl-C)."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

SCRIPT = str(Path(__file__).resolve().parent.parent / "scripts" / "drive_probe.py")


def _state(emulator) -> dict:
    """Every item and its version (each change makes a new one), trashed or not."""
    with emulator.store.lock:
        return {i: (r["title"], r["version"], r["trashed"], tuple(r["parents"]))
                for i, r in emulator.store.files.items()}


def _main(capsys, *args: str) -> tuple[int, list[str]]:
    """The script's main() in this process (over HTTP all the same): (exit code, lines)."""
    spec = importlib.util.spec_from_file_location("drive_probe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(list(args))
    out, err = capsys.readouterr()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # (put back)
    return code, out.splitlines()


def _probe(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, SCRIPT, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ), **kw)


def test_the_probe_answers_each_question_as_the_emulator_behaves(drive_env, emulator, capsys):
    emulator.add_folder("scratch")
    emulator.add_file("scratch/keep.txt", b"untouched")
    emulator.add_file("elsewhere/other.txt", b"untouched too")
    emulator.set_token_app("other-app-token", "another-app")
    before = _state(emulator)
    code, lines = _main(capsys, "--parent", "drive:scratch", "--other-token", "other-app-token")
    assert code == 0
    out = "\n".join(lines)
    assert [line.split(":")[0] for line in lines] == [
        "child-etag", "patch-stale", "trash-patch-stale", "trash-stale", "patch-merges",
        "other-apps"], out
    assert lines[0].startswith("child-etag: adding a child changes a folder's etag: no (etag ")
    assert lines[1].startswith("patch-stale: a property patch naming a stale etag is refused: "
                               "yes (HTTP 412 naming ")
    assert lines[1].endswith("the property reads '1' after)")
    assert lines[2].startswith("trash-patch-stale: files.patch labels.trashed naming a stale "
                               "etag is refused: yes (HTTP 412 naming ")
    assert lines[2].endswith("trashed after: False)")
    # (The emulator models no If-Match on files.trash: docs/emulator.md.)
    assert lines[3].startswith("trash-stale: files.trash naming a stale etag is refused: "
                               "no, applied (HTTP 200 naming ")
    assert lines[4].startswith("patch-merges: a properties patch keeps those it does not "
                               "name: yes (merge) (HTTP 200; ")
    assert lines[5].startswith("other-apps: another app's PRIVATE property is sent to this "
                               "one: no, kept by this one's patch: yes (its write HTTP 200;")
    assert _state(emulator) == before   # (the scratch folder deleted for good, nothing else)


def test_a_server_ignoring_if_match_is_named_and_ctrl_c_removes_the_scratch(drive_env,
                                                                            emulator, capsys):
    """``emu.ignores_if_match`` (``drivestage emulator --ignore-if-match``): the stale writes
    are applied, and said so. Interrupted while a request is held: the scratch folder is
    removed all the same, exit 130."""
    emulator.ignores_if_match = True
    before = _state(emulator)
    code, lines = _main(capsys)
    assert code == 0
    assert lines[1].startswith("patch-stale: a property patch naming a stale etag is refused: "
                               "no, applied (HTTP 200 naming ")
    assert lines[1].endswith("the property reads '2' after)")
    assert lines[2].endswith("trashed after: True)")
    assert lines[5] == ("other-apps: another app's PRIVATE properties: not asked (give "
                        "--other-credentials: a second OAuth client's)")
    assert _state(emulator) == before
    # Ctrl-C while the first trash request is held: removed, exit 130.
    emulator.faults.latency(60, "POST", r"/files/[^/]+/trash", times=1)
    proc = _probe()
    try:
        came, _ = emulator.faults.wait_latencies(lambda n: n >= 1, timeout=30)
        assert came, "the probe never trashed"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        emulator.faults.hurry()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted: removing the scratch folder" in err
    assert _state(emulator) == before
