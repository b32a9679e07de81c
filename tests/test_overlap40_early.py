"""`pull --extract` of a big zip starts its extraction workers before it reads the member
list (their interpreters start beside the read, not after it), and whatever ends the
extraction early - a member list the rules refuse, a zip that is not followed, one small
enough for threads - ends them and removes the temporary folder: DEST holds what it did."""
from __future__ import annotations

import os
import zipfile

import pytest

from drivestage.extract import overlapped, tempdir, workers

from _archives import a_zip, tree
from _cli import run
from _signal_env import _fast  # noqa: F401  (an autouse fixture)
from test_extract_workers import worker_pids


@pytest.fixture
def seen(monkeypatch):
    """Every zip is big here (workers._WORTH: one byte); a spy on the member list's read
    records the workers of this process alive then, and the temporary folders of DEST."""
    monkeypatch.setattr(workers, "_WORTH", 1)
    got: list[tuple[list[int], list[str]]] = []
    real = overlapped.zip_directory

    def zip_directory(path, fd, **kw):
        dest = os.path.dirname(os.path.dirname(path)) \
            if os.path.basename(os.path.dirname(path)) == ".drivestage" else \
            os.path.dirname(path)
        temps = sorted(n for n in os.listdir(dest) if n.startswith(tempdir.TEMP_PREFIX))
        got.append((worker_pids(os.getpid()), temps))
        return real(path, fd, **kw)

    monkeypatch.setattr(overlapped, "zip_directory", zip_directory)
    return got


def _left(dest) -> list[str]:
    """What an extraction into ``dest`` left of its own: temporary folders."""
    return [n for n in os.listdir(dest) if n.startswith((tempdir.TEMP_PREFIX,
                                                          tempdir.OLD_PREFIX))]


def test_a_big_zips_workers_start_before_its_member_list_is_read(emulator, drive_env,
                                                                 tmp_path, seen,
                                                                 monkeypatch):
    members = {f"ds/f{i:03d}.bin": os.urandom(3000) for i in range(300)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    used = []
    real = workers.write_in_processes

    def write_in_processes(*args, **kwargs):  # a spy: the workers it was handed
        used.append(sorted(w.pid for w in kwargs["started"] or [] if w is not None))
        return real(*args, **kwargs)

    monkeypatch.setattr(overlapped, "write_in_processes", write_in_processes)
    code, out, err = run("pull", "drive:d/set.zip", str(tmp_path / "data"), "-x", "-q")
    assert code == 0, err
    assert tree(tmp_path / "data") == {"set.zip": blob, **members}
    assert len(seen) == 1
    pids, temps = seen[0]
    assert len(pids) == 2 and len(temps) == 1   # started, with their folder, before the read
    assert used == [sorted(pids)]               # and the very ones that wrote the members
    assert worker_pids(os.getpid()) == []
    assert _left(tmp_path / "data") == []


def test_a_refused_member_list_ends_the_workers_started_early(emulator, drive_env,
                                                              tmp_path, seen):
    blob = a_zip({"../evil.txt": b"x" * 100, "ok.txt": b"y"})
    emulator.add_file("d/bad.zip", blob)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/bad.zip", str(dest), "-x", "-q")
    assert code == 1
    assert "evil.txt" in err.splitlines()[-1]
    assert [len(p) for p, _ in seen] == [2]   # they had started
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []
    assert tree(dest) == {"bad.zip": blob}   # verified, staged, nothing extracted


def test_a_zip_not_followed_ends_the_workers_and_is_extracted_after(emulator, drive_env,
                                                                    tmp_path, seen):
    members = {f"ds/f{i:02d}.txt": b"text %d " % i * 50 for i in range(40)}
    blob = a_zip(members, zipfile.ZIP_BZIP2)   # bzip2: not followed while it downloads
    emulator.add_file("d/b.zip", blob)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/b.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert [len(p) for p, _ in seen[:1]] == [2]   # started before the list said so
    assert tree(dest) == {"b.zip": blob, **members}
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []


def test_a_zip_small_enough_for_threads_ends_the_workers_started_early(
        emulator, drive_env, tmp_path, seen, monkeypatch):
    members = {f"ds/f{i:02d}.bin": os.urandom(2000) for i in range(30)}
    blob = a_zip(members)
    emulator.add_file("d/s.zip", blob)
    # Big by its size, small by its members: the list says threads.
    monkeypatch.setattr(workers, "_WORTH", len(blob) - 1)
    monkeypatch.setattr(workers, "PER_FILE", 0)
    called = []
    monkeypatch.setattr(overlapped, "write_in_processes",
                        lambda *a, **k: called.append(1))
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/s.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert [len(p) for p, _ in seen] == [2]
    assert called == []   # threads wrote them
    assert tree(dest) == {"s.zip": blob, **members}
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []
