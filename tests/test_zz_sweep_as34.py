import json, os, shutil, sys, hashlib
import pytest
from _checkpoints import save, md5
from test_interrupt_locks import _interrupted_at

T0 = 1764600000.0
DRIVESTAGE = os.path.dirname(__import__("drivestage").__file__)


def _verified(emu, folder_id):
    live = [f for f in emu.files() if not f["labels"]["trashed"] and any(p["id"] == folder_id for p in f.get("parents") or [])]
    by = {}
    for f in live:
        by.setdefault(f["title"], []).append(f)
    out = set()
    for name, fs in by.items():
        if not name.endswith(".json"):
            continue
        ck = name[:-5] + ".pt"
        for s in fs:
            said = json.loads(emu.read_bytes(s["id"]))
            if any(c.get("md5Checksum") == said["md5"] for c in by.get(ck, [])):
                out.add(ck)
    return out, {k: len(v) for k, v in by.items()}


def test_sweep(emulator, drive_env, local_state, tmp_path, monkeypatch, fast_retries):
    from drivestage.upload_tree import push
    from drivestage.retention import RetentionPolicy
    src1, src2 = tmp_path / "s1", tmp_path / "s2"
    save(str(src1), "last", 1, T0); save(str(src1), "epoch_001", 1, T0)
    save(str(src2), "last", 2, T0 + 60); save(str(src2), "epoch_002", 2, T0 + 60)
    shutil.copy(src1 / "epoch_001.pt", src2 / "epoch_001.pt"); shutil.copy(src1 / "epoch_001.json", src2 / "epoch_001.json")
    pol = RetentionPolicy(keep_last=1)
    step = int(os.environ.get("STEP", "5"))
    bad = []
    n = 0
    for k in range(1, 100000, step):
        dest = f"drive:runs/k{k}"
        push(str(src1), dest, pol, jobs=1)
        fid = emulator.find(f"runs/k{k}")["id"]
        hit, calls = _interrupted_at(k, lambda: push(str(src2), dest, pol, jobs=1), opcodes=False, allowed=KeyboardInterrupt, only_under=DRIVESTAGE)
        v, names = _verified(emulator, fid)
        n += 1
        if "last.pt" not in v or not ({"epoch_001.pt", "epoch_002.pt"} & v):
            bad.append((k, v, names))
            print("BAD", k, v, names, flush=True)
        if not hit and calls < k:
            print("END at", k, "calls", calls, flush=True)
            break
    print("RAN", n, "BAD", len(bad))
    assert not bad
