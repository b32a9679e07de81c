"""A local DEST's checkpoint replaced before its sidecar is (attacksync35): the old verified
copy is kept aside until the new sidecar is in, as Drive keeps it beside the new one."""
from __future__ import annotations

import os
import shutil
import textwrap

import pytest

from _checkpoints import md5, save
from _cli import run
from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (the fork server, started before the leak check)
from drivestage.localdir import UPLOAD_PREFIX

T0 = 1764600000.0


def _latest(where: str, tmp_path) -> "tuple[str, bytes] | None":
    """What a resume from ``where`` finds (CheckpointSync.latest_remote_checkpoint, as the
    trainer asks it): the verified checkpoint's name and bytes, or None."""
    from drivestage.hooks import CheckpointSync
    from drivestage.remote import open_store

    sync = CheckpointSync(where, local_dir=str(tmp_path / "reader"))
    try:
        entry = sync.latest_remote_checkpoint()
    finally:
        sync.mirror.stop(flush=False)
    if entry is None:
        return None
    store, _ = open_store(where)
    return entry.name, b"".join(store.read_range(entry, 0, entry.size))


def test_a_reader_between_a_local_dests_checkpoint_and_its_sidecar_finds_the_old_pair(
        local_state, tmp_path):
    """``push ./run /nas/run`` (a mirror's, a trainer's ``drive.logs`` on a NAS): a changed
    last.pt was renamed over the verified one at once, and last.json sent after it. Between
    the two (and for good, when the push was killed there: a preempted node) DEST held the
    new last.pt beside the old sidecar: no verified checkpoint at all, and a resume from it
    started afresh. The old copy is now kept aside until the new sidecar is in."""
    from drivestage.upload_tree import push

    folder = tmp_path / "nas" / "run"
    where = str(folder)
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    push(str(src), where)
    first = (folder / "last.pt").read_bytes()
    assert _latest(where, tmp_path) == ("last.pt", first)
    save(str(src), "last", 2, T0 + 60)
    seen: list[object] = []
    image = tmp_path / "image"

    def progress(n: int) -> None:
        # The sidecar's copy under way: last.pt is in place, last.json not yet.
        if not seen and md5((folder / "last.pt").read_bytes()) != md5(first):
            shutil.copytree(folder, image, symlinks=True)   # what a SIGKILL now leaves
            seen.append(_latest(where, tmp_path))

    push(str(src), where, progress=progress, jobs=1)

    assert seen == [("last.pt", first)]
    assert _latest(str(image), tmp_path) == ("last.pt", first)
    new = (src / "last.pt").read_bytes()
    assert _latest(where, tmp_path) == ("last.pt", new)
    assert sorted(os.listdir(folder)) == ["last.json", "last.pt"]


_KILLED = textwrap.dedent("""
    import os, signal, sys
    from drivestage.upload_tree import push
    size = os.path.getsize(os.path.join(sys.argv[1], "last.pt"))
    sent = [0]
    def progress(n):
        sent[0] += n
        if sent[0] > size:   # last.pt in place, its sidecar's copy begun
            os.kill(os.getpid(), signal.SIGKILL)
    push(sys.argv[1], sys.argv[2], progress=progress, jobs=1)
""")


def test_a_push_killed_before_a_local_dests_sidecar_leaves_a_verified_checkpoint(
        local_state, tmp_path):
    """SIGKILL of the push at that moment: DEST keeps the verified old pair for a resume, and
    the next push leaves DEST with the new pair alone (the old copy gone, to the trash with
    ``--use-trash`` semantics of the push: permanently here)."""
    from drivestage.upload_tree import push

    folder = tmp_path / "nas" / "run"
    where = str(folder)
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    push(str(src), where)
    first = (folder / "last.pt").read_bytes()
    save(str(src), "last", 2, T0 + 60)
    proc = cli_server().run([str(src), where], script=_KILLED, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert (folder / "last.pt").read_bytes() == (src / "last.pt").read_bytes()

    assert _latest(where, tmp_path) == ("last.pt", first)
    # A folder pull of DEST meanwhile takes the copy the sidecar vouches for, the one kept
    # aside, under its name (two items of one name failed it; then it took the new last.pt
    # beside the old sidecar: pair36).
    code, _, err = run("pull", where, str(tmp_path / "pulled"))
    assert code == 0, err
    pulled = tmp_path / "pulled" / "run"
    assert sorted(os.listdir(pulled)) == [".drivestage", "last.json", "last.pt"]
    assert (pulled / "last.pt").read_bytes() == first

    push(str(src), where)
    assert _latest(where, tmp_path) == ("last.pt", (src / "last.pt").read_bytes())
    assert sorted(os.listdir(folder)) == ["last.json", "last.pt"]


_KILLED_MID_COPY = textwrap.dedent("""
    import os, signal, sys
    from drivestage.upload_tree import push
    def progress(n):   # the first MiB of last.pt copied into DEST
        os.kill(os.getpid(), signal.SIGKILL)
    push(sys.argv[1], sys.argv[2], progress=progress, jobs=1)
""")


def test_a_push_killed_mid_copy_leaves_no_partial_file_in_a_local_dest_for_good(
        local_state, tmp_path):
    """A push into a local DEST copies each file into ``.drivestage-upload-<pid>-<random>``
    beside its name, then renames it. Killed mid-copy (a preempted node, the OOM killer), the
    partial copy stayed for good: hidden from every listing, never removed, a partial
    checkpoint of gigabytes on the NAS at each kill. The next push's listing removes a dead
    process's copy (of this machine; another machine's once a day old)."""
    from drivestage.upload_tree import push

    folder = tmp_path / "nas" / "run"
    src = tmp_path / "run"
    src.mkdir()
    (src / "last.pt").write_bytes(os.urandom(3 << 20))
    proc = cli_server().run([str(src), str(folder)], script=_KILLED_MID_COPY, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert [n for n in os.listdir(folder) if n.startswith(UPLOAD_PREFIX)]

    push(str(src), str(folder))

    assert os.listdir(folder) == ["last.pt"]
    assert (folder / "last.pt").read_bytes() == (src / "last.pt").read_bytes()


def test_another_machines_copy_under_way_in_a_local_dest_is_left_a_day(tmp_path):
    """A copy of another namespace (a second machine on the NAS, another container) cannot be
    asked about: it goes only once a day old, by its mtime and its ctime (its mtime is set to
    its source's just before its rename); one of this namespace goes once its pid is gone."""
    import time

    from drivestage.temps import namespace_tag, upload_left

    path = tmp_path / "x"
    path.write_bytes(b"partial")
    os.utime(path, (0, 0))   # (as set just before the rename)
    st, now = os.lstat(path), time.time()
    foreign = "0badf00d" if namespace_tag() != "0badf00d" else "0badf00e"
    assert not upload_left(f"{foreign}.{os.getpid()}-{'a' * 12}", st, now)
    assert upload_left(f"{foreign}.{os.getpid()}-{'a' * 12}", st, now + 2 * 86400)
    assert not upload_left(f"{os.getpid()}-{'a' * 12}", st, now)   # (an older drivestage's)
    assert not upload_left(f"{namespace_tag()}.{os.getpid()}-{'a' * 12}", st, now)
    assert upload_left(f"{namespace_tag()}.{4_194_305}-{'a' * 12}", st, now)   # (above any pid_max)
    assert not upload_left("not-ours", st, now + 2 * 86400)


def test_a_stop_save_sent_alone_into_a_local_dest_leaves_one_file_of_each_name(
        local_state, tmp_path):
    """The trainer's stop save (``DriveFolder.send_alone``: a checkpoint, then its sidecar,
    outside a push) into a local DEST: the old copy its upload keeps aside goes once the
    pair is verified, as the in-place replacement left it (else one more
    ``.drivestage-held.*`` copy after each stop)."""
    from trainer.drive import DriveFolder, retention_policy

    src, folder = tmp_path / "run", tmp_path / "nas" / "run"
    drive = DriveFolder(str(folder), str(src), retention_policy(0, 0, None))
    for epoch in (1, 2):
        save(str(src), "last", epoch, T0 + 60 * epoch)
        drive.send_alone([str(src / "last.pt"), str(src / "last.json")])

    assert sorted(n for n in os.listdir(folder) if n != ".drivestage") == [
        "last.json", "last.pt"]
    assert _latest(str(folder), tmp_path) == ("last.pt", (src / "last.pt").read_bytes())


def test_a_checkpoint_in_a_google_drive_mount_is_replaced_in_place(local_state, tmp_path,
                                                                   working_drive_mount):
    """In a Google Drive mount (Colab's ``/content/drive``) the old copy is not renamed aside:
    DriveFS sends a rename and a removal to Drive before the new file's bytes, and a runtime
    ending between left Drive without the checkpoint (the reason retention holds back there);
    replaced in place, Drive's file keeps its old bytes until the new ones arrive."""
    from drivestage.upload_tree import push

    folder = working_drive_mount.point / "MyDrive" / "run"
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    push(str(src), str(folder))
    save(str(src), "last", 2, T0 + 60)
    names: list[list[str]] = []

    def progress(n: int) -> None:
        names.append(sorted(os.listdir(folder)))

    push(str(src), str(folder), progress=progress, jobs=1)

    assert names and not [n for seen in names for n in seen if n.startswith(".drivestage-held")]
    assert sorted(os.listdir(folder)) == ["last.json", "last.pt"]


def test_a_replaced_checkpoints_old_copy_is_not_kept_in_a_local_dests_trash(local_state,
                                                                           tmp_path):
    """``--use-trash`` (a mirror's, the trainer's ``drive.use_trash``): the old copy kept aside
    goes for good once the new pair is verified, as the replacement in place left nothing;
    moved to DEST's trash, which nothing empties, a mirror filled the disk one checkpoint a
    push."""
    from drivestage.upload_tree import push

    folder = tmp_path / "nas" / "run"
    src = tmp_path / "run"
    for epoch in (1, 2, 3):
        save(str(src), "last", epoch, T0 + epoch)
        push(str(src), str(folder), use_trash=True)

    assert sorted(os.listdir(folder)) == ["last.json", "last.pt"]


_KILLED_AT = textwrap.dedent("""
    import os, signal, sys
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push
    calls = [0]
    def progress(n):
        calls[0] += 1
        if calls[0] == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
    push(sys.argv[1], sys.argv[2], RetentionPolicy(keep_last=1), progress=progress, jobs=1)
""")


@pytest.mark.parametrize("at", [1, 2, 3, 4])
def test_a_push_with_retention_killed_at_each_copy_leaves_a_verified_checkpoint(
        local_state, tmp_path, at):
    """A push with ``--keep-last 1`` into a local DEST (last.pt replaced, epoch_002 new,
    epoch_001 pruned), SIGKILLed as each of its four copies begins: DEST always holds a
    verified checkpoint, and the next push leaves exactly the new files."""
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    folder = tmp_path / "nas" / "run"
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    save(str(src), "epoch_001", 1, T0)
    push(str(src), str(folder), RetentionPolicy(keep_last=1))
    save(str(src), "last", 2, T0 + 60)
    save(str(src), "epoch_002", 2, T0 + 60)
    proc = cli_server().run([str(src), str(folder), str(at)], script=_KILLED_AT, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]

    assert _latest(str(folder), tmp_path) is not None

    push(str(src), str(folder), RetentionPolicy(keep_last=1))
    assert sorted(n for n in os.listdir(folder) if n != ".drivestage") == [
        "epoch_002.json", "epoch_002.pt", "last.json", "last.pt"]
    assert _latest(str(folder), tmp_path) == ("epoch_002.pt",
                                              (src / "epoch_002.pt").read_bytes())
