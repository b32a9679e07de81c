import os, subprocess, sys, json, hashlib
import pytest
from trainer import checkpoint as ckpt

def _run(cfg, k, log, env):
    e = {**os.environ, **env, "OMP_NUM_THREADS": "1", "AT26_K": str(k), "AT26_LOG": str(log)}
    return subprocess.run([sys.executable, "/tmp/at26/killer.py", "train", "-c", cfg],
                          env=e, capture_output=True, text=True, timeout=300)

def test_chaos(emulator, drive_env, tiny_config, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "ds-state"))
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.05")
    ks = [int(x) for x in os.environ.get("AT26_KS", "0").split(",")]
    results = []
    for k in ks:
        out = tmp_path / f"logs{k}"
        cfg = tiny_config(**{"train.epochs": 3, "train.freeze_epochs": 0, "train.batch_size": 4,
                             "train.freeze_batch_size": 4, "train.eval_period": 100, "train.save_period": 1,
                             "train.keep_local": 1, "train.save_minutes": 1e-6, "train.mosaic": False,
                             "train.mixup": False, "train.out_dir": str(out),
                             "drive.logs": f"drive:Models/c{k}/logs"})
        log = tmp_path / f"log{k}.txt"
        p = _run(cfg, k, log, {**drive_env, "DRIVESTAGE_STATE_DIR": os.environ["DRIVESTAGE_STATE_DIR"],
                               "DRIVESTAGE_RETRY_BASE": "0.01", "DRIVESTAGE_RETRY_CAP": "0.05"})
        first = p.returncode
        killed = open(log).read().splitlines()[-1] if log.exists() else ""
        if k:
            p = _run(cfg, 0, tmp_path / f"r{k}.txt", {**drive_env, "DRIVESTAGE_STATE_DIR": os.environ["DRIVESTAGE_STATE_DIR"],
                               "DRIVESTAGE_RETRY_BASE": "0.01", "DRIVESTAGE_RETRY_CAP": "0.05"})
        files = sorted(os.listdir(out))
        last = ckpt.load_checkpoint(str(out / "last.pt")) if (out / "last.pt").exists() else {}
        pos = ckpt.position_of(last) if last else None
        remote = sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                        and any(p_["id"] == (emulator.find(f"Models/c{k}/logs") or {}).get("id") for p_ in f.get("parents", [])))
        results.append((k, first, killed, p.returncode, pos, files, remote, p.stderr[-1500:] if p.returncode else ""))
    for r in results:
        print("RESULT", r)
    if ks == [0]:
        print(open(tmp_path / "log0.txt").read())
    assert 0
