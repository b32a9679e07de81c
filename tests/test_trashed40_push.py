"""trashed40: a push whose folder on Drive goes to the trash while it runs (the user in
Drive's web page, another machine's clean-up, a dedupe emptying a duplicate). Drive takes
uploads into a trashed folder without an error: the new file is in the trash with it
(``labels.trashed`` true in the upload's answer, ``explicitlyTrashed`` false), and Drive
empties it 30 days later.

A push found that only once every file was sent (one files.get per folder at the end), so
every file after the trashing went into the trash too, then the whole push again into the
folder the path leads to now. The upload's answer already says it: the first file that
arrives in the trash stops the uploads (no request more in the normal case), the push goes
on into the folder the path leads to now, and what it sent into the trash stays there,
restorable with its folder. A DEST given by id has no path to lead elsewhere: exit 1, one
line naming the folder and the trash.

Trashing lands at a chosen request, through a proxy in front of the emulator
(tests/test_messages_push_trashed.py)."""
from __future__ import annotations

import hashlib

import pytest

from _cli import run
from _drive_state import live_md5s
from _proxy import Proxy, Reply

FOLDER = "application/vnd.google-apps.folder"
N = 6


def _files(tmp_path, sub: str = ""):
    src = tmp_path / "run"
    (src / sub).mkdir(parents=True)
    files = {f"f{i}.txt": b"bytes %d" % i for i in range(N)}
    for name, data in files.items():
        (src / sub / name).write_bytes(data)
    return src, {n: [hashlib.md5(d).hexdigest()] for n, d in files.items()}


def _trash_at_first_upload(proxy: Proxy, emulator, folder_id: str) -> None:
    """``folder_id`` goes to the trash as the first upload's answer comes back."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        if status in (200, 201):
            emulator.store.set_trashed(folder_id, True)
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", mutate, times=1)


def _in_trash(emulator) -> list[str]:
    return sorted(f["title"] for f in emulator.files()
                  if f["mimeType"] != FOLDER and f["labels"]["trashed"])


def _uploads(proxy: Proxy) -> int:
    return proxy.count("POST", r"^/upload/")


@pytest.mark.parametrize("trashed, sub", [("runs/a", ""), ("runs", ""),
                                          ("runs/a/sub", "sub")])
def test_a_folder_trashed_mid_push_stops_the_uploads_into_the_trash(
        emulator, penv, proxy, tmp_path, trashed, sub):
    """DEST, a folder above it or the subfolder the files go to is trashed after the first
    upload: the next upload's answer says it arrived in the trash and no other upload goes
    there; the push goes on into the folder the path leads to now and ends 0 with every
    file live there. The two sent into the trash stay there, restorable with the folder."""
    emulator.add_file(f"runs/a/{sub}/old.txt".replace("//", "/"), b"old")
    folder_id = emulator.find(trashed)["id"]
    src, want = _files(tmp_path, sub)
    _trash_at_first_upload(proxy, emulator, folder_id)
    code, out, err = run("push", str(src), "drive:runs/a", "--jobs", "1")
    assert code == 0, err
    assert "went to the trash while this push wrote into it" in err, err
    want["old.txt"] = []   # (in the trash with its folder: not sent again, nor deleted)
    got = live_md5s(emulator, f"runs/a/{sub}".rstrip("/"))
    assert got == {n: v for n, v in want.items() if v}, got
    assert _in_trash(emulator) == ["f0.txt", "f1.txt", "old.txt"]
    assert _uploads(proxy) == 2 + N   # (was 2 * N: every file into the trash, then again)
    assert emulator.find(trashed)["id"] != folder_id


def test_a_folder_given_by_id_trashed_before_the_push_is_refused(emulator, penv, proxy,
                                                                tmp_path):
    emulator.add_file("runs/a/old.txt", b"old")
    folder_id = emulator.find("runs/a")["id"]
    emulator.store.set_trashed(emulator.find("runs")["id"], True)
    src, _ = _files(tmp_path)
    code, out, err = run("push", str(src), f"drive:id:{folder_id}", "--jobs", "1")
    assert code == 1, err
    assert err.strip().splitlines()[-1] == \
        f"Error: drive:id:{folder_id} is in the trash; restore it first", err
    assert _uploads(proxy) == 0


@pytest.mark.parametrize("trashed", ["runs/a", "runs", "runs/a/sub"])
def test_a_folder_trashed_before_the_push_is_made_anew_at_the_path(emulator, penv, proxy,
                                                                  tmp_path, trashed):
    """The path leads to no live folder: made anew, as on a first push; nothing is sent into
    the trash, and the trashed folder stays as it was."""
    emulator.add_file("runs/a/sub/old.txt", b"old")
    folder_id = emulator.find(trashed)["id"]
    emulator.store.set_trashed(folder_id, True)
    src, want = _files(tmp_path, "sub")
    code, out, err = run("push", str(src), "drive:runs/a", "--jobs", "1")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a/sub") == want
    assert _in_trash(emulator) == ["old.txt"]
    assert _uploads(proxy) == N
