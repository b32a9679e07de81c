"""push23: a file the push updates in place (a log, a sidecar) that was MOVED on Drive since
the push listed it. Moved out of DEST by the user (to keep it), it was still updated by id
where it now lives: the user's other folder got the new bytes. Moved by ``drivestage dedupe``
(into the oldest of same-named folders: the folder the DEST path leads to), it must still be
updated where it is, never duplicated."""
from __future__ import annotations

import _cli
from _envs import env_local_retries  # noqa: F401  (the env fixture)


def _live(emulator, folder: str) -> dict[str, list[bytes]]:
    """name -> the bytes of each live file of that name directly in ``folder``."""
    rec = emulator.find(folder)
    out: dict[str, list[bytes]] = {}
    for c in emulator.store.children(rec["id"]):
        if not c.get("trashed") and c.get("mimeType") != "application/vnd.google-apps.folder":
            out.setdefault(c["title"], []).append(emulator.read_bytes(c["id"]))
    return out


def test_a_log_moved_out_of_dest_since_the_listing_keeps_its_bytes(emulator, env, tmp_path):
    """The user moves results.csv from Models/logs into Models/keep to keep run 1's log; the
    listing lags. The push updated it in place by id: Models/keep/results.csv got run 2's
    bytes, and Models/logs had no results.csv at all."""
    keep = emulator.add_folder("Models/keep")
    logs = emulator.add_folder("Models/logs")
    fid = emulator.add_file("Models/logs/results.csv", b"epoch\n1\n")
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n2\n")
    emulator.faults.lag_listing(updated=5)
    emulator.store.update_meta(fid, {}, add_parents=[keep], remove_parents=[logs])
    code, out, err = _cli.run("push", str(src), "drive:Models/logs")
    assert "Traceback" not in err
    assert emulator.read_bytes(fid) == b"epoch\n1\n", err   # the kept copy is as it was
    assert code == 0, err
    assert "drive:Models/logs/results.csv was moved into another folder" in err, err
    assert "since it was listed; left as it is, sent as a new file" in err, err
    emulator.faults.lag_listing()
    assert _live(emulator, "Models/keep") == {"results.csv": [b"epoch\n1\n"]}
    assert _live(emulator, "Models/logs") == {"results.csv": [b"epoch\n1\n2\n"]}
    assert sum(1 for f in emulator.files() if f["title"] == "results.csv") == 2


class _DedupeFirst:
    """The push's store (the emulator through the real stack), which runs ``before()`` just
    before the upload of ``name``: after the push listed DEST, before it updates the file."""

    def __init__(self, emulator, name: str, before):
        from drivestage.drive import connect

        self._store = connect(api_root=emulator.url, token="test-token")
        self.name, self.before, self.done = name, before, False

    def __getattr__(self, attr):
        return getattr(self._store, attr)

    def upload(self, local_path, folder, name, **kw):
        if name == self.name and not self.done:
            self.done = True
            self.before()
        return self._store.upload(local_path, folder, name, **kw)


def test_a_log_a_dedupe_moved_into_the_folder_the_path_leads_to_is_updated_in_place(
        emulator, env, tmp_path):
    """Models/logs (the push's folder) and an older folder of that name the user moves into
    Models while the push runs; `drivestage dedupe drive:Models/logs` merges the newer into
    the older (results.csv moves, the emptied folder goes to the trash) between the push's
    listing and its update of results.csv. The file now sits in the folder the path leads to:
    updated there, by id, no second results.csv; the push runs once more into the path (its
    folder was trashed) and finds it up to date."""
    from drivestage.dedupe import dedupe
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    models = emulator.add_folder("Models")
    older = emulator.add_folder("Old/logs")      # made first: the oldest "logs"
    old_top = emulator.find("Old")["id"]
    ours = emulator.add_folder("Models/logs")
    fid = emulator.add_file("Models/logs/results.csv", b"epoch\n1\n")
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n2\n")

    def merge() -> None:
        emulator.store.update_meta(older, {}, add_parents=[models], remove_parents=[old_top])
        merged = dedupe((connect(api_root=emulator.url, token="test-token"), "Models/logs"))
        assert [m.gone for m in merged.merged] == [True], merged.summary()
        assert emulator.store.get(fid)["parents"] == [older]
        assert emulator.store.get(ours)["trashed"]

    store = _DedupeFirst(emulator, "results.csv", merge)
    result = push(str(src), (store, "Models/logs"), jobs=1)
    assert store.done
    assert (result.uploaded, result.unchanged) == ([], 1)   # the run again, into the path
    assert emulator.find("Models/logs")["id"] == older
    assert emulator.read_bytes(fid) == b"epoch\n1\n2\n"          # in place: the same id
    assert [f["id"] for f in emulator.files()
            if f["title"] == "results.csv" and not f["labels"]["trashed"]] == [fid]
    assert _live(emulator, "Models/logs") == {"results.csv": [b"epoch\n1\n2\n"]}
