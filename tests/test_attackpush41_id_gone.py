"""attackpush41: a DEST named by id alone (``drive:id:X``) deleted for good while a push
writes into it. trashed40 ended the trashed case with one line; this one warned of "pushing
again into the folder the path leads to now" (an id names no path), then failed on the 404
of the id's read, whose line spoke of a link's resourcekey. Now one line, exit 1, no push
again. A proxy in front of the emulator deletes the folder as the first upload's answer
comes."""
from __future__ import annotations

from _cli import run
from _proxy import Reply


def test_a_dest_by_id_deleted_for_good_mid_push_ends_with_one_line(emulator, penv, proxy,
                                                                    tmp_path):
    emulator.add_file("runs/a/old.txt", b"old")
    folder_id = emulator.find("runs/a")["id"]
    src = tmp_path / "run"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.txt").write_bytes(b"b%d" % i)

    def delete(status: int, headers: dict, body: bytes) -> Reply:
        if status in (200, 201):
            emulator.store.delete(folder_id)
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", delete, times=1)
    code, out, err = run("push", str(src), f"drive:id:{folder_id}", "--jobs", "1")
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"Error: drive:id:{folder_id} was deleted for good while this push wrote into it (or "
        "is no longer shared with you). Choose another folder"), err
    assert "pushing again" not in err and "resourcekey" not in err, err
    assert "trash" not in err, err   # (nothing this push sent is there)
