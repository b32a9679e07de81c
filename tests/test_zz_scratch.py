import hashlib, json, os, threading
from _archives import a_fixed_zip as a_zip, a_tar, a_tgz, tree
from _cli import run
from drivestage import stamps
from drivestage.emulator.revisions import replace_content
from test_two_archives26 import _zip

A = {"ds/x": b"aaaa", "ds/a": b"a"}
B = {"ds/x": b"bb", "ds/b": b"b"}

def _replace(emu, title, data, tmp_path):
    blob = tmp_path / ("blob" + title)
    blob.write_bytes(data)
    [rec] = [r for r in emu.store.all_files() if r["title"] == title]
    replace_content(emu.store, rec["id"], str(blob), len(data), hashlib.md5(data).hexdigest())

def p(*a):
    code, out, err = run(*a)
    print(">>", a[1:], code, err.strip().splitlines()[-1:] if err.strip() else "")
    return code, err

def test_two(emulator, drive_env, local_state, tmp_path, fast_retries):
    emulator.add_file("src/a.zip", _zip(A))
    emulator.add_file("src/b.zip", _zip(B))
    d = tmp_path / "d"
    p("pull", "drive:src", str(d), "-x", "--remove-archive"); print(tree(d))
    emulator.clear_requests()
    p("pull", "drive:src", str(d), "-x", "--remove-archive"); print(tree(d), emulator.api_calls("media.download"))
    p("pull", "drive:src", str(d), "-x"); print(tree(d), emulator.api_calls("media.download"))
    _replace(emulator, "a.zip", _zip({"ds/x": b"AAAAAA", "ds/a": b"a2"}), tmp_path)
    emulator.clear_requests()
    p("pull", "drive:src", str(d), "-x", "--remove-archive"); print(tree(d), emulator.api_calls("media.download"))
    emulator.clear_requests()
    p("pull", "drive:src", str(d), "-x", "--remove-archive"); print(tree(d), emulator.api_calls("media.download"))
    emulator.clear_requests()
    p("pull", "drive:src", str(d), "-x"); print(tree(d), emulator.api_calls("media.download"))
    _replace(emulator, "b.zip", _zip({"ds/x": b"BBBBBBBB", "ds/b": b"b2"}), tmp_path)
    emulator.clear_requests()
    p("pull", "drive:src", str(d), "-x", "--remove-archive"); print(tree(d), emulator.api_calls("media.download"))
    emulator.clear_requests()
    p("pull", "drive:src", str(d), "-x", "--remove-archive"); print(tree(d), emulator.api_calls("media.download"))
    os.unlink(d / "src/ds/x")
    emulator.clear_requests()
    p("pull", "drive:src", str(d), "-x", "--remove-archive"); print(tree(d), emulator.api_calls("media.download"))
    emulator.clear_requests()
    p("pull", "drive:src", str(d), "-x", "--remove-archive"); print(tree(d), emulator.api_calls("media.download"))

def test_tar_nodl(emulator, drive_env, local_state, tmp_path, fast_retries):
    for name, f in (("s.tar", a_tar), ("s.tar.gz", a_tgz)):
        emulator.add_file("d/" + name, f({"ds/a.txt": b"alpha", "ds/b.txt": b"bravo"}))
        d = tmp_path / name
        p("pull", "drive:d/" + name, str(d), "-x", "--remove-archive"); print(tree(d))
        emulator.clear_requests()
        p("pull", "drive:d/" + name, str(d), "-x"); print(tree(d), dict(emulator.api_calls()))
        [rec] = [r for r in emulator.store.all_files() if r["title"] == name]
        emulator.restrict_download(rec["id"])
        p("pull", "drive:d/" + name, str(d), "-x", "--remove-archive"); print(tree(d))
        p("pull", "drive:d/" + name, str(d)); print(tree(d))
        os.unlink(d / "ds/a.txt")
        p("pull", "drive:d/" + name, str(d), "-x", "--remove-archive"); print(tree(d))
        p("pull", "drive:d/" + name, str(d), "-x", "--force"); print(tree(d))

def test_threads(emulator, drive_env, local_state, tmp_path, fast_retries):
    emulator.add_file("d/set.zip", a_zip({"ds/a.txt": b"alpha"*1000, "ds/b.txt": b"bravo"}))
    from drivestage.stage import pull
    import drivestage
    for flags in ([True, False], [True, True], [False, True]):
        d = tmp_path / ("t" + str(flags))
        errs = []
        def go(rm):
            try:
                pull("drive:d/set.zip", str(d), extract=True, remove_archive=rm, quiet=True)
            except Exception as e:
                errs.append(repr(e))
        ts = [threading.Thread(target=go, args=(f,)) for f in flags]
        [t.start() for t in ts]; [t.join() for t in ts]
        print(flags, errs, sorted(tree(d)))
