"""``push --delete`` and ``mirror --delete`` behind a server that lies about what it lists
(tests/_proxy.py in front of the emulator), by attackpush32."""
from __future__ import annotations

import json

from _cli import run
from _drive_state import live_md5s
from _liar import liar_env, one_error_line, proxy  # noqa: F401  (fixtures)
from _proxy import Reply
from test_runmark30_marks import _fresh_vm, _old_runs


def _listed_as_a_file(name: str):
    """Listings show the folder ``name`` as a 5-byte file (a proxy, a server not Drive)."""
    def mutate(status, headers, body):
        obj = json.loads(body)
        for it in obj.get("items", []):
            if it.get("title") == name:
                it.update(mimeType="application/octet-stream", md5Checksum="0" * 32,
                          fileSize="5")
        data = json.dumps(obj).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(data))
        return Reply(status, out, [data])
    return mutate


def test_a_run_folder_listed_as_a_file_is_not_trashed_whole(emulator, proxy, liar_env,
                                                            tmp_path, monkeypatch):
    """A fresh VM's ``push ./runs drive:runs --delete`` behind a listing that shows the run
    folder exp2 as a file: the deletion's own files.get answered a folder, but only the
    name, the parent and an md5 were compared, and exp2 went to the trash whole, its
    checkpoints with it (``--delete-permanently``: gone). Drive never turns a file into a
    folder: the push stops, exp2 untouched."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    before = _old_runs(emulator, tmp_path)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    runs = _fresh_vm(tmp_path, monkeypatch)
    proxy.on("GET", r"^/drive/v2/files\?", _listed_as_a_file("exp2"))

    code, _, err = run("push", str(runs), "drive:runs", "--delete-permanently")

    assert one_error_line(code, err) == (
        "Error: delete drive:runs/exp2: the server listed it as a file, but files.get answers "
        "a folder; stopped, not deleted. Drive never does that: check --api-root / "
        "DRIVESTAGE_API_ROOT and any proxy or cache between you and Drive")
    assert live_md5s(emulator, "runs/exp2") == before["exp2"]
    assert live_md5s(emulator, "runs/exp1") == before["exp1"]
