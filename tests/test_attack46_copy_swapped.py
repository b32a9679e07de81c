"""attack46: a file that kept changing while it was sent is sent from a private copy made of
it as it is now (:mod:`drivestage.snapshots`), opened by its path again, through links: a
link to a file outside SRC put at its name, or a link put at its folder, during its last
pass had that outside file copied and sent under its name, exit 0."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _checkpoints import md5
from _proxy import Reply

SECRET = b"root:x:0:0:a file outside SRC\n" * 10


@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap", ["file", "folder"])
def test_a_link_put_at_a_changing_file_is_not_copied_through(
        emulator, penv, proxy, tmp_path, swap):
    src = tmp_path / "run"
    (src / "sub").mkdir(parents=True)
    path = src / "sub" / "train.log"
    path.write_bytes(b"epoch 1\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.log").write_bytes(SECRET)
    passes: list[bool] = []

    def change_it(status: int, headers: dict, body: bytes) -> Reply:
        # (as each pass's session opens, its file open: changed each time, swapped at the last)
        passes.append(True)
        if len(passes) <= 3:
            with open(path, "ab") as fh:
                fh.write(b"epoch n\n")
        if len(passes) == 3:
            if swap == "file":
                os.rename(path, tmp_path / "train.log.before")
                os.symlink(tmp_path / "out" / "train.log", path)
            else:
                os.rename(src / "sub", tmp_path / "sub.before")
                os.symlink(tmp_path / "out", src / "sub")
        return Reply(status, headers, [body])
    for method in ("POST", "PUT"):   # (a session's opening: a new file's, then its update's)
        proxy.on(method, r"^/upload/(?!.*upload_id=)", change_it)
    code, _, err = run("push", str(src), "drive:runs/a", "--jobs", "1")
    assert len(passes) >= 3, err
    found = [f for f in emulator.files() if f.get("md5Checksum") == md5(SECRET)]
    assert found == [], err
    assert code == 1, err
    what = (f"{path} became a link while the push ran (a file when it began); not sent "
            "again: push again once it is a file") if swap == "file" else (
            f"{src}/sub became a link while the push ran (a folder when it began); not sent "
            "again: push again once it is a folder")
    assert err.strip().splitlines()[-1] == f"Error: {what}", err
