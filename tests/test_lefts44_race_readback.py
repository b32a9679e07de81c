"""lefts44: two machines push a changed epoch_001.pt into one folder at once (attack43's
leftover). The second one's push takes the name and removes the copies it replaces, the
first one's new copy among them; the first one's read-back (its new copy, before its old
copies go) then finds its copy gone, and said "…not there…; its old copies were kept. Push
again; if it persists, something between here and Drive answers in its place: check
--api-root … and any proxy": a proxy hint where no proxy did anything. Now its line says
what happened: another writer replaced it; nothing of this push's was removed, and its file
is as it was.

The other machine is a real push (a child of the fork server, a state folder of its own),
run while the first push's upload answer passes the proxy: the whole of it between that
push's upload and its read-back. The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import json
import os
import time

from _cli import child_env, run
from _forkcli import cli_server
from _messages import error_line
from _proxy import Reply
from _sigpush42 import live, md5


def test_a_push_whose_new_copy_another_push_replaced_says_so(emulator, through, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    ckpt = src / "epoch_001.pt"
    old, mine, theirs = os.urandom(50_000), os.urandom(50_000), os.urandom(50_000)
    ckpt.write_bytes(old)
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    ckpt.write_bytes(mine)
    os.utime(ckpt, (time.time() + 5, time.time() + 5))
    other = tmp_path / "other"   # (the other machine: its run folder, its state folder)
    other.mkdir()
    (other / "epoch_001.pt").write_bytes(theirs)
    env = dict(child_env(emulator), DRIVESTAGE_STATE_DIR=str(tmp_path / "other-state"))
    pushed: list = []
    uploaded: list = []   # (the id of this push's new copy, as its upload's answer named it)

    def meanwhile(status: int, headers: dict, body: bytes) -> Reply:
        res = json.loads(body) if status == 200 and body.startswith(b"{") else {}
        if res.get("md5Checksum") == md5(mine) and not pushed:   # (the upload's answer)
            uploaded.append(res["id"])
            pushed.append(cli_server().run(["push", str(other), "drive:runs/a"], env=env,
                                           timeout=60))
        return Reply(status, headers, [body])

    through.on("POST", r"/upload/", meanwhile)
    through.on("PUT", r"/upload/", meanwhile)
    code, _, err = run("push", str(src), "drive:runs/a")
    assert pushed and pushed[0].returncode == 0, pushed
    assert code == 1, err
    mine_id = uploaded[0]   # (gone from Drive: the other push deleted it)
    theirs_id = next(f["id"] for f in emulator.files() if f.get("md5Checksum") == md5(theirs))
    assert error_line(err) == (
        f"Error: epoch_001.pt: the copy this push uploaded ({mine_id}) was replaced on Drive "
        f"meanwhile by another writer's ({theirs_id}: another push of this name at the same "
        "time); this push removed nothing, and the local file is as it was: push again if "
        "this machine's copy is the one to keep"), err
    assert "proxy" not in err and "persists" not in err
    # Nothing lost: the other machine's copy holds the name, this one's file is unchanged.
    assert live(emulator) == [("epoch_001.pt", md5(theirs))]
    assert ckpt.read_bytes() == mine
    through.rules.clear()
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    assert live(emulator) == [("epoch_001.pt", md5(mine))]
