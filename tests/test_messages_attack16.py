"""docs/troubleshooting.md's messages of the sixteenth session's small fixes, each made to
happen through the real stack (see tests/_messages.py): an infinite metric read from a
checkpoint's name, a link at the upload claims file, another run's checkpoint left by a
push."""
from __future__ import annotations

import os

from _cli import run
from _messages import renders, shown


# --- an infinite metric read from a name -----------------------------------------------

@renders("not a finite number; it is never kept as a best checkpoint")
def test_an_infinite_metric_in_a_name_is_never_kept_as_the_best(emulator, drive_env,
                                                                 local_state):
    """Keras names its checkpoints ``weights.{epoch:02d}-{val_acc:.2f}.hdf5``; a diverged
    epoch writes ``inf`` there. With ``--keep-best 1 --mode max`` that file stayed the best
    for ever: it now counts as having no metric, said once, and the real best stays."""
    names = ["weights.01-0.50.hdf5", "weights.02-inf.hdf5", "weights.03-0.70.hdf5",
             "weights.04-0.60.hdf5"]
    for name in names:
        emulator.add_file(f"Models/logs/{name}", os.urandom(100))
    code, out, err = run("prune", "drive:Models/logs", "--pattern",
                         r"weights\.(?P<epoch>\d+)-(?P<val_acc>[^-]+)\.hdf5\Z",
                         "--keep-best", "1", "--metric", "val_acc", "--mode", "max")
    assert code == 0, err
    left = {f["title"] for f in emulator.files() if f["title"].endswith(".hdf5")
            and not f["labels"]["trashed"]}
    assert left == {"weights.03-0.70.hdf5", "weights.04-0.60.hdf5"}
    warning = ("weights.02-inf.hdf5: its val_acc is inf, not a finite number; it is never "
               "kept as a best checkpoint (the other rules still apply)")
    assert err.count(warning) == 1, err
    shown("not a finite number; it is never kept as a best checkpoint", err)
    code, _, err = run("prune", "drive:Models/logs", "--pattern",
                       r"weights\.(?P<epoch>\d+)-(?P<val_acc>[^-]+)\.hdf5\Z",
                       "--keep-best", "1", "--metric", "val_acc", "--mode", "max", "-n")
    assert code == 0 and warning not in err  # once per process: a mirror plans every period


# --- a a link at the upload claims file --------------------------------------------------

@renders("is a symbolic link; drivestage never follows a link there")
def test_a_dangling_link_at_the_claims_file_is_refused_not_followed(emulator, drive_env,
                                                                     local_state, tmp_path):
    """``upload-sessions.json.claims`` in the state folder is a dangling link: push used to
    create the file it leads to (and lock bytes of it). It stops with one line naming the
    link, sends nothing, and makes nothing."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(1000))
    state = tmp_path / "state"
    state.mkdir()
    target = tmp_path / "elsewhere" / "made.txt"
    target.parent.mkdir()
    claims = state / "upload-sessions.json.claims"
    os.symlink(target, claims)
    code, _, err = run("push", str(src), "drive:up")
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"Error: {claims} is a symbolic link; drivestage never follows a link there (it "
        "would create or lock the file it leads to): remove the link, or point "
        "DRIVESTAGE_STATE_DIR at a folder of your own")
    shown("is a symbolic link; drivestage never follows a link there", err)
    assert not target.exists()
    assert emulator.find("up/a.bin") is None


# --- another run's checkpoint, left by a push ---------------------------------------------

@renders("is another run's checkpoint (run …), left as it is; the rest was pushed")
def test_a_push_leaves_another_runs_checkpoint_and_says_what_to_do(emulator, drive_env,
                                                                   local_state, tmp_path):
    """Run B's ``last.pt`` and its sidecar are on Drive; run A's folder holds ``last.pt``
    too. The push sends the rest, leaves B's pair byte for byte and exits 1 with one line;
    ``--force`` replaces it."""
    from _checkpoints import save, sidecar_json

    theirs = os.urandom(3000)
    fid = emulator.add_file("Models/logs/last.pt", theirs)
    emulator.add_file("Models/logs/last.json", sidecar_json(5, theirs, "run-B", 1.7e9))
    src = str(tmp_path / "a")
    save(src, "last", 4, 1.7e9 + 300, run="run-A", saved=1.7e9 + 300)
    with open(os.path.join(src, "results.csv"), "w") as fh:
        fh.write("epoch\n4\n")
    code, _, err = run("push", src, "drive:Models/logs")
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line == ("Error: drive:Models/logs/last.pt is another run's checkpoint (run run-B, "
                    "epoch 5), left as it is; the rest was pushed. Push into another folder, "
                    "or add --force to replace it")
    shown("is another run's checkpoint (run …), left as it is; the rest was pushed", line)
    assert emulator.read_bytes(fid) == theirs and emulator.find("Models/logs/results.csv")
    code, _, err = run("push", src, "drive:Models/logs", "--force")
    assert code == 0, err
    with open(os.path.join(src, "last.pt"), "rb") as fh:
        assert emulator.read_bytes(emulator.find("Models/logs/last.pt")["id"]) == fh.read()
