import hashlib, json, os, threading, subprocess, sys
from _archives import a_fixed_zip as a_zip, tree
from _cli import run
from drivestage import stamps
from test_zz_scratch import p

DATA = {"ds/a.txt": b"alpha", "ds/b.txt": b"bravo"}

def test_nodl(emulator, drive_env, local_state, tmp_path, fast_retries):
    folder = emulator.add_folder("VOC", owner="t@example.com", shared_with_me="reader")
    emulator.add_shortcut("VOC", folder)
    fid = emulator.add_file("VOC/set.zip", a_zip(DATA), owner="t@example.com")
    emulator.add_shortcut("short.zip", fid)
    d = tmp_path / "d"
    p("pull", "drive:VOC/set.zip", str(d), "-x", "--remove-archive"); print(tree(d))
    emulator.restrict_download(fid)
    p("pull", "drive:VOC/set.zip", str(d), "-x", "--remove-archive"); print(tree(d))
    p("pull", "drive:VOC/set.zip", str(d), "-x"); print(tree(d))
    p("pull", "drive:short.zip", str(d), "-x", "--remove-archive"); print(tree(d))
    os.unlink(d / "ds/a.txt")
    code, err = p("pull", "drive:VOC/set.zip", str(d), "-x", "--remove-archive"); print(err[-600:]); print(tree(d))
    code, err = p("pull", "drive:VOC/set.zip", str(d)); print(err[-600:]); print(tree(d))

def test_shortcut_link(emulator, drive_env, local_state, tmp_path, fast_retries):
    fid = emulator.add_file("d/set.zip", a_zip(DATA))
    emulator.add_shortcut("short.zip", fid)
    d = tmp_path / "d"
    p("pull", "drive:short.zip", str(d), "-x", "--remove-archive"); print(sorted(os.listdir(d)), tree(d))
    p("pull", "drive:d/set.zip", str(d), "-x", "--remove-archive"); print(tree(d))
    p("pull", "drive:short.zip", str(d), "-x"); print(tree(d))
    os.unlink(d / "ds/a.txt")
    p("pull", "drive:short.zip", str(d), "-x", "--remove-archive"); print(tree(d))

def test_stamp_edit(emulator, drive_env, local_state, tmp_path, fast_retries):
    emulator.add_file("d/set.zip", a_zip(DATA))
    for val in ("yes", 1, None):
        d = tmp_path / f"d{val}"
        p("pull", "drive:d/set.zip", str(d), "-x", "--remove-archive")
        [s] = stamps.of(str(d), "set.zip")
        path = s["_path"]
        raw = json.load(open(path)); raw["removed"] = val
        json.dump(raw, open(path, "w"))
        emulator.clear_requests()
        p("pull", "drive:d/set.zip", str(d), "-x"); print(val, sorted(tree(d)), emulator.api_calls("media.download"))
        p("pull", "drive:d/set.zip", str(d), "-x", "--remove-archive"); print(val, sorted(tree(d)), emulator.api_calls("media.download"))

def test_old_stamp(emulator, drive_env, local_state, tmp_path, fast_retries):
    emulator.add_file("d/set.zip", a_zip(DATA))
    d = tmp_path / "d"
    p("pull", "drive:d/set.zip", str(d), "-x", "--remove-archive")
    [s] = stamps.of(str(d), "set.zip")
    raw = json.load(open(s["_path"])); print(raw)
