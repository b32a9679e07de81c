"""A folder pull of a local DEST, and a trainer's resume from one, while a push replaces a
checkpoint there or after one killed at each step of it (pair36): what lands is a pair its
sidecar vouches for.

A push into a local DEST sets a replaced checkpoint's old copy aside (a hard link since attack36)
(``.drivestage-held.<random>.<name>``, :mod:`drivestage.local_held`), renames the new one
into place, then the sidecar, and only then removes the old copy. The folder pull left the
copy aside out: between the checkpoint's rename and the sidecar's (for good after a SIGKILL
there) it took the new, unvouched ``last.pt`` with the old ``last.json``, and after a kill
right after the old copy was set aside, ``last.json`` alone. A resume from what it pulled
found no checkpoint and started afresh."""
from __future__ import annotations

import json
import os
import textwrap
import types

import pytest

from _checkpoints import md5
from _cli import run
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (the fork server, started before the leak check)
from drivestage.local_held import PREFIX as HELD_PREFIX
from drivestage.localdir import UPLOAD_PREFIX

RUN = "20261206-010000-36aa"

#: A push (of ``argv[1]`` into ``argv[2]``) SIGKILLed at one step (``argv[3]``) of the
#: replacement of last.pt: the kill comes from the push's own calls, in the child.
_KILLED = textwrap.dedent("""
    import os, signal, sys
    from drivestage.upload_tree import push
    step = sys.argv[3]
    real_rename, real_replace, real_link = os.rename, os.replace, os.link

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def rename(a, b, *args, **kwargs):
        real_rename(a, b, *args, **kwargs)
        if step == "held" and os.path.basename(b).startswith(".drivestage-held."):
            kill()   # the old copy set aside; the new one not yet in place

    def link(a, b, *args, **kwargs):
        real_link(a, b, *args, **kwargs)
        if step == "held" and os.path.basename(b).startswith(".drivestage-held."):
            kill()   # the old copy linked aside; the new one not yet in place

    def replace(a, b, *args, **kwargs):
        real_replace(a, b, *args, **kwargs)
        if os.path.basename(str(a)).startswith(".drivestage-upload-"):
            if (step, os.path.basename(str(b))) in (("renamed", "last.pt"),
                                                    ("sidecar", "last.json")):
                kill()   # last.pt in place, its sidecar not yet; or both, the old copy left

    def progress(n):
        if step == "copying":
            kill()   # the new last.pt being copied: nothing set aside yet

    os.rename, os.replace, os.link = rename, replace, link
    push(sys.argv[1], sys.argv[2], progress=progress, jobs=1)
""")

#: What DEST holds after each kill (besides the copies kept aside), and which of the two
#: checkpoints a reader must get: the old one until the new sidecar is in.
STEPS = {
    "copying": (["last.json", "last.pt"], 0, 1),   # (files, copies aside, epoch read)
    "held": (["last.json", "last.pt"], 1, 1),   # (linked aside: the name keeps its bytes)
    "renamed": (["last.json", "last.pt"], 1, 1),
    "sidecar": (["last.json", "last.pt"], 1, 2),
}


def _state(epoch: int) -> dict:
    from trainer import checkpoint as ckpt

    return {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {},
            "epoch": epoch, "iteration": epoch * 10, "epoch_iteration": 0, "config": {},
            "run": RUN, "pad": os.urandom(4096)}


def _save(src, epoch: int) -> bytes:
    """The trainer's save of ``last.pt`` (its sidecar after it): its bytes."""
    from trainer import checkpoint as ckpt

    path = ckpt.save_checkpoint(_state(epoch), str(src / "last.pt"), saved=1764980000.0 + epoch)
    return open(path, "rb").read()


def _pair(folder) -> tuple[int, bytes]:
    """The checkpoint ``folder`` holds as a verified pair: its epoch and bytes (the sidecar
    names its md5 and size)."""
    data = (folder / "last.pt").read_bytes()
    side = json.loads((folder / "last.json").read_bytes())
    assert (side["md5"], side["size"]) == (md5(data), len(data))
    return side["epoch"], data


def _resume(out_dir, logs) -> tuple[int, bytes]:
    """What the trainer's ``--resume auto`` loads in ``out_dir``, with ``drive.logs`` the
    local folder ``logs`` (None: none): the epoch and the bytes of the file."""
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder
    from trainer.resume import _decide

    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=str(out_dir)))
    drive = DriveFolder(str(logs), str(out_dir)) if logs is not None else None
    start = _decide(cfg, "auto", drive)
    assert start.path is not None, "started afresh"
    return ckpt.load_checkpoint(start.path)["epoch"], open(start.path, "rb").read()


def _aside(folder) -> list[str]:
    return [n for n in os.listdir(folder) if n.startswith(HELD_PREFIX)]


@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_pull_and_a_resume_after_a_push_killed_at_each_step_get_a_verified_pair(
        local_state, tmp_path, step):
    """``push ./run /nas/run`` replacing last.pt, SIGKILLed as it copies the new bytes, right
    after setting the old copy aside, after renaming the new one into place, after the new
    sidecar: a folder pull of DEST lands last.pt and last.json as a verified pair (the old
    one until the new sidecar is in, under last.pt's own name), a resume from what it pulled
    and one with DEST as ``drive.logs`` both load that checkpoint, and the next push leaves
    DEST with the new pair alone."""
    from drivestage.upload_tree import push

    src, folder = tmp_path / "run", tmp_path / "nas" / "run"
    old = _save(src, 1)
    push(str(src), str(folder))
    new = _save(src, 2)
    proc = cli_server().run([str(src), str(folder), step], script=_KILLED, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    files, kept_aside, epoch = STEPS[step]
    assert sorted(n for n in os.listdir(folder) if not n.startswith(HELD_PREFIX)
                  and not n.startswith(UPLOAD_PREFIX)) == files   # (a partial: swept later)
    assert len(_aside(folder)) == kept_aside
    want = old if epoch == 1 else new

    code, _, err = run("pull", str(folder), str(tmp_path / "pulled"))

    assert code == 0, err
    pulled = tmp_path / "pulled" / "run"
    assert sorted(os.listdir(pulled)) == [".drivestage", "last.json", "last.pt"]
    assert _pair(pulled) == (epoch, want)
    assert _resume(pulled, None) == (epoch, want)
    assert _resume(tmp_path / "fresh", folder) == (epoch, want)
    assert _pair(tmp_path / "fresh") == (epoch, want)

    push(str(src), str(folder))
    assert sorted(os.listdir(folder)) == ["last.json", "last.pt"]
    assert _pair(folder) == (2, new)
    code, _, err = run("pull", str(folder), str(tmp_path / "pulled"))
    assert code == 0, err
    assert _pair(pulled) == (2, new)


def test_a_pull_of_a_local_dest_while_its_push_sends_the_sidecar_gets_the_old_pair(
        local_state, tmp_path):
    """The pull runs while the push copies last.json (last.pt renamed into place, the old
    copy aside): it took the new last.pt with the old last.json."""
    from drivestage.upload_tree import push

    src, folder = tmp_path / "run", tmp_path / "nas" / "run"
    old = _save(src, 1)
    push(str(src), str(folder))
    new = _save(src, 2)
    got: list[object] = []

    def progress(n: int) -> None:
        if not got and (folder / "last.pt").read_bytes() == new:
            assert _aside(folder)
            got.append(run("pull", str(folder), str(tmp_path / "pulled")))

    push(str(src), str(folder), progress=progress, jobs=1)

    assert [g[0] for g in got] == [0], got
    assert _pair(tmp_path / "pulled" / "run") == (1, old)
    assert _pair(folder) == (2, new)


def test_a_pull_of_a_folder_holding_a_copy_aside_of_a_plain_file_takes_the_file(
        local_state, tmp_path):
    """A copy aside that no sidecar names (a planted one of a plain file) does not stand for
    its name while the file is there: the pull takes the file at the name, as before."""
    folder = tmp_path / "nas" / "run"
    folder.mkdir(parents=True)
    (folder / "top.txt").write_bytes(b"current")
    (folder / f"{HELD_PREFIX}0123456789ab.top.txt").write_bytes(b"older")

    code, _, err = run("pull", str(folder), str(tmp_path / "pulled"))

    assert code == 0, err
    assert (tmp_path / "pulled" / "run" / "top.txt").read_bytes() == b"current"
    assert sorted(os.listdir(tmp_path / "pulled" / "run")) == [".drivestage", "top.txt"]


def test_a_pull_after_two_pushes_killed_before_their_sidecars_gets_the_pair_still_vouched(
        local_state, tmp_path):
    """Killed twice after the rename (a node preempted at each save): DEST holds epoch 3 at
    last.pt, epochs 1 and 2 aside, the sidecar of epoch 1. The pull and both resumes take
    epoch 1, the one pair there is."""
    from drivestage.upload_tree import push

    src, folder = tmp_path / "run", tmp_path / "nas" / "run"
    old = _save(src, 1)
    push(str(src), str(folder))
    for epoch in (2, 3):
        _save(src, epoch)
        proc = cli_server().run([str(src), str(folder), "renamed"], script=_KILLED,
                                timeout=120)
        assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(_aside(folder)) == 2

    code, _, err = run("pull", str(folder), str(tmp_path / "pulled"))

    assert code == 0, err
    assert _pair(tmp_path / "pulled" / "run") == (1, old)
    assert _resume(tmp_path / "pulled" / "run", None) == (1, old)
    assert _resume(tmp_path / "fresh", folder) == (1, old)


def test_a_resume_whose_copy_aside_went_while_it_fetched_lists_again(local_state, tmp_path):
    """A resume with DEST as ``drive.logs`` chose the old copy aside (the new sidecar not in
    yet); the push then verified the new pair and removed that copy before the fetch read it.
    It took last.pt for unreadable, as a damaged one: "no checkpoint of the run can be read"
    (or an older checkpoint, when one was there). It lists again and takes the new pair."""
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder
    from trainer.resume import _fetch_newest
    from drivestage.upload_tree import push

    src, folder = tmp_path / "run", tmp_path / "nas" / "run"
    _save(src, 1)
    push(str(src), str(folder))
    new = _save(src, 2)
    proc = cli_server().run([str(src), str(folder), "renamed"], script=_KILLED, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    out_dir = tmp_path / "fresh"
    drive = DriveFolder(str(folder), str(out_dir))
    listed = drive.checkpoints()
    assert [c.entry.name for c in listed if c.name == "last.pt"] == ["last.pt"]
    push(str(src), str(folder))   # the new pair in, the copy aside removed
    assert not _aside(folder)

    start = _fetch_newest(drive, listed, str(out_dir))

    assert os.path.basename(start.path) == "last.pt"
    assert ckpt.load_checkpoint(start.path)["epoch"] == 2
    assert _pair(out_dir) == (2, new)


@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_checkpoint_pulled_by_its_path_after_a_killed_push_is_the_one_its_sidecar_names(
        local_state, tmp_path, step):
    """``pull /nas/run/last.pt ./x`` and ``pull /nas/run/last.json ./x`` after the same
    kills: the file at the name was taken (the new bytes beside the old sidecar; after a kill
    right after the old copy was set aside, "no such file"). It is the copy the sidecar
    vouches for, as a folder pull takes, and a rerun stages nothing again."""
    from drivestage.upload_tree import push

    src, folder = tmp_path / "run", tmp_path / "nas" / "run"
    old = _save(src, 1)
    push(str(src), str(folder))
    new = _save(src, 2)
    proc = cli_server().run([str(src), str(folder), step], script=_KILLED, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    _files, _kept_aside, epoch = STEPS[step]
    x = tmp_path / "x"

    for name in ("last.json", "last.pt"):
        code, _, err = run("pull", str(folder / name), str(x))
        assert code == 0, err
    assert _pair(x) == (epoch, old if epoch == 1 else new)
    code, _, err = run("pull", str(folder / "last.pt"), str(x))
    assert code == 0, err
    assert "already staged" in err, err


@pytest.mark.parametrize("vouched", ["aside", "at the name"])
def test_a_drive_folder_synced_from_a_local_dest_with_a_copy_aside_pulls_the_vouched_one(
        emulator, drive_env, local_state, tmp_path, vouched):
    """A DEST in a Google Drive mount that an older drivestage kept a copy aside in (or
    another tool copied such a folder to Drive): Drive holds ``.drivestage-held.<12 hex>.
    last.pt`` beside ``last.pt``. The folder pull takes the one ``last.json`` vouches for, as
    ``last.pt`` (it left the copy aside out, whichever the sidecar named)."""
    from _checkpoints import sidecar_json

    old, new = os.urandom(3000), os.urandom(3100)
    emulator.add_file("run/last.pt", new)
    emulator.add_file(f"run/{HELD_PREFIX}0123456789ab.last.pt", old)
    want = old if vouched == "aside" else new
    emulator.add_file("run/last.json", sidecar_json(1, want))

    code, _, err = run("pull", "drive:run", str(tmp_path / "x"))

    assert code == 0, err
    got = tmp_path / "x" / "run"
    assert sorted(os.listdir(got)) == [".drivestage", "last.json", "last.pt"]
    assert (got / "last.pt").read_bytes() == want
