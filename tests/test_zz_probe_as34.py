import os, json, hashlib
from _checkpoints import save, md5

T0 = 1764600000.0


def _dest_state(dest):
    out = {}
    for n in sorted(os.listdir(dest)):
        p = dest / n
        if p.is_file():
            out[n] = md5(p.read_bytes())
    return out


def test_probe_local_dest(local_state, tmp_path):
    from drivestage.upload_tree import push
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    dest = tmp_path / "nas" / "run"
    push(str(src), str(dest))
    v1 = _dest_state(dest)
    print("V1", v1, json.loads((dest / "last.json").read_bytes())["md5"])
    save(str(src), "last", 2, T0 + 60)
    (src / "z.bin").write_bytes(b"z" * 5000)
    fired = []
    def progress(n):
        # while z.bin goes (after last.pt): the loop saves again
        if not fired and (dest / "last.pt").exists() and md5((dest / "last.pt").read_bytes()) != v1["last.pt"]:
            fired.append(1)
            save(str(src), "last", 3, T0 + 120)
    push(str(src), str(dest), progress=progress, jobs=1)
    st = _dest_state(dest)
    print("AFTER", st, "sidecar names", json.loads((dest / "last.json").read_bytes())["md5"], fired)
    assert 0
