"""The requests of a push and a mirror without ``--delete`` are those they made before this
session's run-mark changes (6ffcbc8's parent), by attackmark31: the marks' reads are for
what ``--delete`` would remove, and a plain push asks nothing more."""
from __future__ import annotations

from drivestage.mirror import Mirror
from trainer.drive import DriveFolder, retention_policy

from _cli import run
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from test_runmark30_marks import _old_runs
from tests.test_leasefull42_dedupe_mirror import until_claims

# Measured on 6ffcbc8~1 with this file's steps (the same numbers on this branch).
# (since pushgap47, a push that made a new name lists its folder once more after the uploads,
# for a folder made at that name meanwhile: 1 files.list more in "push", "mirror" and
# "run's push"; none in "push again", which sends nothing)
BEFORE = {
    "push": {"files.list": 4 + 1, "files.get": 2, "about.get": 1, "files.generateIds": 1,
             "files.insert": 1, "media.upload": 1},
    "push again": {"files.list": 4, "files.get": 1},
    # (and, since leasefull42, its claim on DEST for dedupe: DEST's folder read by id, the
    # property written at its start and removed at its stop: 3 requests a mirror, once;
    # since attackmirror42, DEST's properties read before it, for the claims of mirrors
    # killed: 1 more, once; since mirrorclaim43 its own thread looks DEST up with caches of
    # its own, beside the push: a files.list by name for it where the push's cache made it
    # that files.get by id)
    "mirror": {"files.list": 4 + 1 + 1, "files.get": 2 + 1, "about.get": 1, "files.generateIds": 1,
               "files.insert": 1, "media.upload": 1, "properties.insert": 1,
               "properties.delete": 1},
    "run's push": {"files.get": 4, "files.list": 3 + 1, "files.insert": 2, "media.upload": 2,
                   "about.get": 1, "files.generateIds": 1},
}


def test_a_plain_push_and_mirror_make_the_requests_they_made_before(emulator, env, tmp_path):
    _old_runs(emulator, tmp_path)
    runs = tmp_path / "old-vm"
    (runs / "exp1" / "notes.txt").write_text("n\n")
    seen: dict = {}
    for step in ("push", "push again"):
        emulator.clear_requests()
        assert run("push", str(runs), "drive:runs")[0] == 0
        seen[step] = emulator.api_calls()
    (runs / "exp2" / "more.txt").write_text("m\n")
    emulator.clear_requests()
    mirror = Mirror(str(runs), "drive:runs")
    try:
        mirror.flush(60)
        # (its claim is written by a thread of its own, and removed by it at the stop)
        until_claims(emulator, lambda found: len(found) == 1, "the mirror never claimed")
    finally:
        mirror.stop(60, flush=False)
    until_claims(emulator, lambda found: found == [], "the claim was never removed")
    seen["mirror"] = emulator.api_calls()
    _save(str(runs / "exp1"), 3)
    emulator.clear_requests()
    DriveFolder("drive:runs/exp1", str(runs / "exp1"), retention_policy(0, 0, None)).push()
    seen["run's push"] = emulator.api_calls()
    assert seen == BEFORE
