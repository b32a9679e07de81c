"""fidelity24: resource keys of the items a request names in its body or its parameters.

Drive's resource-key guide
(https://developers.google.com/workspace/drive/api/guides/resource-keys, "Set the resource key
on the request"): "All resource keys of files referenced in a request to the Drive API are
set in the X-Goog-Drive-Resource-Keys HTTP header", its example a move of fileId1 from folder
fileId2 to folder fileId3, which sends the keys of all three. A folder shared by link before
Drive's 2021 security update (it has a resource key) that a user may write into (a class's
"Submissions" folder shared with "anyone with the link: editor") is named by an upload or a
new folder only in the body's ``parents``: drivestage sent the key only for ids in the URI,
and Drive answered 404 for the folder. Real PyDrive2/googleapiclient over HTTP against the
emulator, which checks the keys as Drive does.
"""
from __future__ import annotations

import hashlib

import _cli
from _envs import env  # noqa: F401  (a fixture)

TEACHER = "teacher@school.edu"
KEYS = "X-Goog-Drive-Resource-Keys"


def _submissions(emulator) -> tuple[str, str]:
    folder = emulator.add_folder("Submissions", owner=TEACHER, resource_key="0-subKEY")
    emulator.share_link(folder, role="writer", resource_key="0-subKEY")
    return folder, f"https://drive.google.com/drive/folders/{folder}?resourcekey=0-subKEY"


def test_a_push_into_a_writable_folder_shared_by_a_link_with_a_key(emulator, env, tmp_path):
    """It failed with "starting upload of …: not found on Drive (HTTP 404 …)": the upload's
    start names the folder only in its body."""
    folder, link = _submissions(emulator)
    src = tmp_path / "run"
    (src / "logs").mkdir(parents=True)
    weights = b"w" * (600 * 1024)   # three chunks of 256 KiB
    (src / "w.pt").write_bytes(weights)
    (src / "logs" / "loss.csv").write_bytes(b"1,0.5\n")
    code, _, err = _cli.run("push", str(src), link, "--chunk-size", "256KiB")
    assert code == 0, err
    kids = {r["title"]: r for r in emulator.store.children(folder)}
    assert kids["w.pt"]["md5"] == hashlib.md5(weights).hexdigest()
    logs = {r["title"]: r for r in emulator.store.children(kids["logs"]["id"])}
    assert logs["loss.csv"]["md5"] == hashlib.md5(b"1,0.5\n").hexdigest()
    uploads = [r for r in emulator.requests if "upload" in r.path]
    assert len([r for r in uploads if r.method == "PUT"]) >= 3
    assert all(f"{folder}/0-subKEY" in (r.headers.get(KEYS) or "") for r in uploads)


def test_no_key_header_for_a_folder_of_ones_own(emulator, env, tmp_path):
    """Only known keys are sent: a push into My Drive sends no key header at all."""
    emulator.add_folder("Models")
    src = tmp_path / "run"
    src.mkdir()
    (src / "w.pt").write_bytes(b"w")
    code, _, err = _cli.run("push", str(src), "drive:Models/run")
    assert code == 0, err
    assert all(KEYS not in r.headers for r in emulator.requests)


def test_a_push_to_the_folder_without_its_key_says_to_give_the_link_as_dest(emulator, env,
                                                                             tmp_path):
    """The hint said "give the whole link … as SRC" to a push, whose folder is its DEST."""
    folder, _ = _submissions(emulator)
    src = tmp_path / "run"
    src.mkdir()
    (src / "w.pt").write_bytes(b"w")
    code, _, err = _cli.run("push", str(src), f"drive:id:{folder}")
    assert code == 1
    assert "not found on Drive (HTTP 404" in err
    assert err.rstrip().endswith("give the whole link (with its resourcekey=...) as SRC or DEST")
    assert not emulator.store.children(folder)
