"""``pull -x`` never replacing the user's own files at member paths (clobber32), attacked
(attackclob32): a pull finishing while another asks what the stamps record, an adopted
copy of an executable member, and the trainer's advice for a Drive folder of archives.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import shlex
import tarfile
import threading
from typing import Any

import _cli
import drivestage.stamps as stamps
from _archives import a_fixed_zip, tree
from drivestage.extract import journals
from drivestage.extract.occupied import Occupied
from drivestage.stage_extraction import settle_journals

A = {"ds/a.txt": b"from a\n", "ds/only_a.txt": b"a\n"}
B = {"ds/a.txt": b"from b, longer\n"}


def _stamp_of(dest, name: str) -> str:
    (entry,) = [n for n in os.listdir(dest / ".drivestage") if n.startswith(name + "@")]
    return str(dest / ".drivestage" / entry)


def test_a_pull_finishing_while_another_asks_what_is_recorded_is_not_taken_for_the_user(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """Pull a.zip is between its merge and its stamp (its journal names its members) when
    pull b.zip, sharing ``ds/a.txt``, asks what the stamps record; a.zip's stamp is written
    and its journal removed just as b.zip reads DEST's journals. b.zip replaces a.zip's
    member, exit 0, as an overlay does."""
    emulator.add_file("F/a.zip", a_fixed_zip(A))
    emulator.add_file("F/b.zip", a_fixed_zip(B))
    dest = tmp_path / "data"
    _cli.ok("pull", "drive:F/a.zip", str(dest), "-x")
    # a.zip as it is just after its merge: members in DEST, its journal, no stamp yet.
    stamp_path = _stamp_of(dest, "a.zip")
    with open(stamp_path, "rb") as fh:
        stamp = fh.read()
    os.unlink(stamp_path)
    records = stamps.records(json.loads(stamp))
    journals.note_merging(str(dest), str(dest / "a.zip"), records)

    real = stamps.merging
    finished = []

    def a_finishes_then_read(state_fd: int, folder: str) -> list[str]:
        if not finished:   # a.zip's last two steps: its stamp, then its journal removed
            with open(stamp_path, "wb") as fh:
                fh.write(stamp)
            settle_journals(str(dest), str(dest / "a.zip"), json.loads(stamp))
            finished.append(True)
        return real(state_fd, folder)

    monkeypatch.setattr(stamps, "merging", a_finishes_then_read)
    code, out, err = _cli.run("pull", "drive:F/b.zip", str(dest), "-x")

    assert finished
    assert code == 0, err
    files = {k: v for k, v in tree(dest).items() if not k.endswith(".zip")}
    assert files == {"ds/a.txt": B["ds/a.txt"], "ds/only_a.txt": A["ds/only_a.txt"]}
    assert [n for n in os.listdir(dest / ".drivestage") if n.endswith(".merging")] == []


def _tgz_with_modes(members: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_600_000_000
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


SCRIPT = b"#!/bin/sh\necho ready\n"


def test_a_users_copy_of_an_executable_member_is_adopted_executable(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """A file of the user's with a member's very bytes is adopted as the member (kept, same
    inode and mtime); one of a member that is executable (mode 0755) but not itself (the
    user's ``cp`` or editor made it 0644) stayed 0644 while the pull said it was staged:
    ``./run.sh`` was "Permission denied" where a fresh pull's is run. It now gets the
    member's execute bits, as the extraction gives them."""
    emulator.add_file("F/a.tgz", _tgz_with_modes({"bin/run.sh": (SCRIPT, 0o755),
                                                  "bin/notes.txt": (b"n\n", 0o644),
                                                  "bin/linked.sh": (SCRIPT, 0o755)}))
    fresh = tmp_path / "fresh"
    _cli.ok("pull", "drive:F/a.tgz", str(fresh), "-x")
    want = os.stat(fresh / "bin/run.sh").st_mode & 0o111
    assert want
    dest = tmp_path / "data"
    (dest / "bin").mkdir(parents=True)
    for name, data in (("run.sh", SCRIPT), ("notes.txt", b"n\n")):
        (dest / "bin" / name).write_bytes(data)
        os.chmod(dest / "bin" / name, 0o640)
    # A hard link to a file outside DEST: adopted, its mode not DEST's to change.
    (tmp_path / "elsewhere.sh").write_bytes(SCRIPT)
    os.chmod(tmp_path / "elsewhere.sh", 0o640)
    os.link(tmp_path / "elsewhere.sh", dest / "bin/linked.sh")
    before = {n: os.stat(dest / "bin" / n) for n in ("run.sh", "notes.txt", "linked.sh")}

    _cli.ok("pull", "drive:F/a.tgz", str(dest), "-x")

    for name, st in before.items():
        now = os.stat(dest / "bin" / name)
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert os.stat(dest / "bin/run.sh").st_mode & 0o777 == 0o640 | want
    assert os.stat(dest / "bin/notes.txt").st_mode & 0o777 == 0o640
    assert os.stat(tmp_path / "elsewhere.sh").st_mode & 0o777 == 0o640
    assert (dest / "bin/run.sh").read_bytes() == SCRIPT


def test_the_trainers_command_for_a_folder_of_archives_pulls_into_data_root(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """``data.drive_zip`` a Drive folder of archives: it lands in ``data.root/<folder>``, and
    the refusal's DEST is that folder. The line's command named it as the pull's DEST, so
    the folder went one level down (``data/VOC_datasets/VOC_datasets``), the user's file
    stayed and the next start was refused again. It now names ``data.root``, as the
    trainer pulls: run as given, it replaces the file."""
    import yaml
    from click.testing import CliRunner

    from trainer.cli import cli as trainer_cli

    members = {"VOCdevkit/VOC2007/a.jpg": b"jpg", "VOCdevkit/VOC2007/b.jpg": b"jpeg"}
    emulator.add_file("VOC_datasets/VOC.zip", a_fixed_zip(members))
    root = tmp_path / "data"
    (root / "VOC_datasets/VOCdevkit/VOC2007").mkdir(parents=True)
    (root / "VOC_datasets/VOCdevkit/VOC2007/b.jpg").write_bytes(b"mine")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"root": str(root), "drive_zip": "drive:VOC_datasets"},
        "train": {"device": "cpu", "out_dir": str(tmp_path / "logs")}}))

    result = CliRunner().invoke(trainer_cli, ["train", "-c", str(cfg)])

    assert result.exit_code == 1, result.stderr
    command = shlex.join(["drivestage", "pull", "drive:VOC_datasets", str(root), "-x",
                          "--force"])
    line = result.stderr[result.stderr.rindex("Error: "):].strip()
    assert line.endswith(f"move it away, or replace it with `{command}`; then start again")
    assert (root / "VOC_datasets/VOCdevkit/VOC2007/b.jpg").read_bytes() == b"mine"
    given = shlex.split(line[line.index("`") + 1:line.rindex("`")])
    _cli.ok(*given[1:])
    assert (root / "VOC_datasets/VOCdevkit/VOC2007/b.jpg").read_bytes() == b"jpeg"
    assert not (root / "VOC_datasets/VOC_datasets").exists()


def test_a_folder_pull_replaces_what_its_earlier_archive_adopted_beside_a_file_to_compare(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """A Drive folder's a.zip and b.tgz (staged by a pull without -x) share ``ds/p.txt``; the
    user unzipped a.zip by hand, and has b.tgz's ``ds/q.txt`` too. a.zip adopts its
    ``p.txt``, which b.tgz then replaces, as it does a.zip's member. b.tgz's check ran before
    a.zip's stamp, and a refusal it could not count before comparing ``q.txt`` (a tar's
    member, not written yet) waited: asked again after a.zip's turn, the stamps were read
    for the files to compare, not for the surely other one, and b.tgz was refused over
    ``p.txt`` (exit 1), though no such refusal came without ``q.txt``."""
    emulator.add_file("F/a.zip", a_fixed_zip({"ds/p.txt": b"from a\n"}))
    b = {"ds/p.txt": b"from b, longer\n", "ds/q.txt": b"qq\n"}
    emulator.add_file("F/b.tgz", _tgz_with_modes({k: (v, 0o644) for k, v in b.items()}))
    dest = tmp_path / "data"
    _cli.ok("pull", "drive:F", str(dest))
    (dest / "F/ds").mkdir(parents=True)
    (dest / "F/ds/p.txt").write_bytes(b"from a\n")
    (dest / "F/ds/q.txt").write_bytes(b"qq\n")
    q = os.stat(dest / "F/ds/q.txt")
    # b.tgz's check before a.zip's stamp (the archives are extracted at once; this makes the
    # order sure): a.zip's stamp waits for it.
    checked = threading.Event()
    check, write = Occupied.check, stamps.write

    def b_checked(self: Occupied, *args: Any, **kwargs: Any) -> None:
        try:
            check(self, *args, **kwargs)
        finally:
            if os.path.basename(self.archive) == "b.tgz":
                checked.set()

    ordered: list[bool] = []

    def a_stamped_after(where: str, stamp: dict[str, Any]) -> None:
        if stamp.get("name") == "a.zip" and stamp.get("extracted"):
            ordered.append(checked.wait(10))   # (ran out: stamped first, and passed 10 s late)
        write(where, stamp)

    monkeypatch.setattr(Occupied, "check", b_checked)
    monkeypatch.setattr(stamps, "write", a_stamped_after)

    code, out, err = _cli.run("pull", "drive:F", str(dest), "-x")

    assert ordered == [True], "a.zip's stamp was not written after b.tgz's check"
    assert code == 0, err
    assert {k: v for k, v in tree(dest / "F").items() if k.startswith("ds/")} == b
    assert os.stat(dest / "F/ds/q.txt").st_ino == q.st_ino   # adopted, not written again
