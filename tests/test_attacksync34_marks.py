"""A long-lived mirror's ``--delete`` and a run folder marked after the mirror first asked
it (attacksync34)."""
from __future__ import annotations

from _cli import run
from _drive_state import live_md5s
from _liar import liar_env  # noqa: F401  (fixtures)
from _proxy import Reply
from drivestage.mirror import Mirror
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from test_runmark30_marks import LOGS, OURS, _fresh_vm
from trainer.drive import DriveFolder, retention_policy


def test_a_folder_marked_a_run_folder_after_a_mirror_asked_it_keeps_its_sidecars(
        emulator, env, tmp_path, monkeypatch):
    """Machine A mirrors ``./runs drive:runs --delete --exclude '*.pt'`` (weights stay on
    Drive) for days; Drive's listing shows no properties. ``runs/exp9`` was made by hand on
    Drive (``notes.txt``, an old ``.pt``): A's period asked it for its mark (none: a plain
    folder, its notes go). Then machine B started a run into exp9, which marked it and sent
    its verified epoch_001 pair. A's next period took the answer it had for good (cached for
    the store's life): exp9 a plain folder, file by file, and trashed B's sidecar (its
    checkpoint verified no more) and results.csv. A push asks again now."""
    emulator.add_file("runs/exp9/notes.txt", b"n\n")
    emulator.add_file("runs/exp9/old.pt", b"o" * 10)
    emulator.list_leaves_out = {"properties"}
    runs = _fresh_vm(tmp_path, monkeypatch)
    mirror = Mirror(str(runs), "drive:runs", delete=True, exclude=["*.pt"])
    try:
        mirror.flush(60)
        assert set(live_md5s(emulator, "runs/exp9")) == {"old.pt"}
        monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "machine-b"))
        run_b = tmp_path / "machine-b-runs" / "exp9"
        run_b.mkdir(parents=True)
        _save(str(run_b), 1)
        (run_b / "results.csv").write_text("epoch\n")
        DriveFolder("drive:runs/exp9", str(run_b), retention_policy(0, 0, None)).push()
        of_b = live_md5s(emulator, "runs/exp9")
        assert set(of_b) == {"old.pt", "epoch_001.pt", "epoch_001.json", "results.csv"}
        monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "fresh-state"))

        mirror.flush(60)
    finally:
        mirror.stop(60, flush=False)

    assert live_md5s(emulator, "runs/exp9") == of_b
    assert set(live_md5s(emulator, "runs/exp3")) == set(LOGS)


def test_a_folder_a_run_marked_while_the_push_sent_its_files_is_not_trashed(
        emulator, proxy, liar_env, tmp_path, monkeypatch):
    """``push ./runs drive:runs --delete``: ``runs/exp9`` (made by hand on Drive, notes in it)
    is a folder SRC lacks, to go whole once the push's files are verified. While they were
    sent, a run on another machine marked exp9 a run folder and sent its first verified
    checkpoint there: the push then trashed exp9 whole, the run's checkpoint in it. The
    folder read just before its removal shows the mark now: it is left, said once."""
    emulator.add_file("runs/exp9/notes.txt", b"n\n")
    exp9 = emulator.find("runs/exp9")["id"]
    runs = _fresh_vm(tmp_path, monkeypatch)
    started: list[int] = []

    def meanwhile(status, headers, body):
        if not started:   # machine B's run, as the push's first upload starts
            started.append(status)
            emulator.set_properties(exp9, OURS)
            emulator.add_file("runs/exp9/epoch_001.pt", b"w" * 100)
            emulator.add_file("runs/exp9/epoch_001.json", b'{"epoch": 1}')
        return Reply(status, headers, [body])
    proxy.on("POST", r"uploadType=resumable", meanwhile)

    code, _, err = run("push", str(runs), "drive:runs", "--delete")

    assert code == 0, err
    assert started
    assert emulator.find("runs/exp9") is not None, "trashed"
    of_b = live_md5s(emulator, "runs/exp9")
    assert set(of_b) == {"notes.txt", "epoch_001.pt", "epoch_001.json"}
    warned = [line for line in err.splitlines() if line.startswith("WARNING")
              and "exp9" in line]
    assert warned == ["WARNING drivestage.drive.store: drive:runs/exp9 was marked a run "
                      "folder on Drive since it was listed; not deleted"], err
