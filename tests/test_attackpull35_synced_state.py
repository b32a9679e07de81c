"""attackpull35: a DEST in a Drive mount (Drive for desktop, Colab's ``/content/drive``) holds
drivestage's own state, which the mount syncs to Drive like any file: a push with a policy
marks DEST a run folder (``runs/.drivestage/run-folder``, since nasmark34), a pull keeps its
stamps and merge lock there (``data/.drivestage/``) and, killed, its partial download
(``.ds.zip.<key>.partial`` and its record), the trainer its lines (``.drivestage-trainer/``).
``pull drive:runs`` (drive:data) on another machine then failed, exit 2, on the first such
name: "rename that item on Drive", which for a live state folder renamed the mount's stamps
away, and the next push or pull there made it again. A folder pull leaves drivestage's
names out, as it leaves them out of a local folder and a DEST's trash out (attacknew34); a
pull naming such an item itself is still refused (tests/test_pull_stamps.py).

The mount's sync is played by adding what the push or pull wrote into the mount's folder to
the emulator, file by file (tests/_drivemount.py models a mount, not its sync to Drive).
"""
from __future__ import annotations

import os

from _cli import run
from drivestage.partials import partial_path, ranges_path


def _sync(emulator, folder, drive_path: str) -> list[str]:
    """Add every file under the local ``folder`` to the emulator under ``drive_path``, as
    the Drive mount sends what is written into it; their relative paths."""
    sent = []
    for here, _, files in os.walk(folder):
        for name in files:
            full = os.path.join(here, name)
            rel = os.path.relpath(full, folder)
            with open(full, "rb") as fh:
                emulator.add_file(f"{drive_path}/{rel}", fh.read())
            sent.append(rel)
    return sorted(sent)


def _files(folder) -> list[str]:
    """The files under ``folder`` but the pull's own state (its stamps, in .drivestage)."""
    return sorted(rel for rel in (os.path.relpath(os.path.join(here, n), folder)
                                  for here, _, files in os.walk(folder) for n in files)
                  if ".drivestage" not in rel.split(os.sep)[:-1])


def test_a_run_folder_pushed_into_a_drive_mount_is_pulled_without_its_mark(
        emulator, drive_env, local_state, tmp_path):
    runs = tmp_path / "runs" / "exp1"
    runs.mkdir(parents=True)
    (runs / "epoch_001.pt").write_bytes(b"one")
    mount = tmp_path / "mount" / "runs"   # /content/drive/MyDrive/runs
    code, _, err = run("push", str(tmp_path / "runs"), str(mount), "--keep-last", "2")
    assert code == 0, err
    assert os.path.join(".drivestage", "run-folder") in _sync(emulator, mount, "runs")

    code, _, err = run("pull", "drive:runs", str(tmp_path / "copy"))

    assert code == 0, err
    copy = tmp_path / "copy" / "runs"
    assert (copy / "exp1" / "epoch_001.pt").read_bytes() == b"one"
    assert _files(copy) == [os.path.join("exp1", "epoch_001.pt")]
    assert not (copy / ".drivestage" / "run-folder").exists()   # a pull marks nothing
    code, _, err = run("pull", "drive:runs", str(tmp_path / "copy"))
    assert code == 0, err
    assert "1 already staged" in err


def test_a_data_root_in_a_drive_mount_is_pulled_without_drivestages_state(
        emulator, drive_env, local_state, tmp_path):
    emulator.add_file("src/labels.csv", b"a,b\n")
    mount = tmp_path / "mount" / "data"   # /content/drive/MyDrive/data
    code, _, err = run("pull", "drive:src/labels.csv", str(mount))
    assert code == 0, err
    # A pull killed there mid-download left its partial and record; the trainer its lines.
    from drivestage import connect
    big = connect().resolve("src/labels.csv")
    partial = partial_path(str(mount / "VOC.zip"), big)
    for leftover in (partial, ranges_path(partial)):
        with open(leftover, "wb") as fh:
            fh.write(b"{}")
    (mount / ".drivestage-trainer" / "lines").mkdir(parents=True)
    (mount / ".drivestage-trainer" / "lines" / "train.txt").write_bytes(b"x.jpg 1,2,3,4,0\n")
    sent = _sync(emulator, mount, "data")
    assert any(f.startswith(".drivestage" + os.sep) for f in sent)

    code, _, err = run("pull", "drive:data", str(tmp_path / "copy"))

    assert code == 0, err
    copy = tmp_path / "copy" / "data"
    assert _files(copy) == ["labels.csv"]
    assert (copy / "labels.csv").read_bytes() == b"a,b\n"
