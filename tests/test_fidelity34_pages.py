"""fidelity34: a listing page may be empty before the listing's end.

The v2 reference (``files.list`` ``maxResults``): "Partial or empty result pages are possible
even before the end of the files list has been reached". The emulator gave partial pages
(``short_pages``) but never an empty one; ``emulator.faults.empty_pages(times)`` now answers
pages with no items and a nextPageToken that goes on. A client that took an empty page for
the end would pull nothing and exit 0, or take DEST for empty: upload every file again and
leave what ``--delete`` should have removed. Real PyDrive2/googleapiclient over HTTP.
"""
from __future__ import annotations

from _cli import run
from _envs import env  # noqa: F401  (a fixture)


def _empty_pages_served(emulator, folder: str) -> int:
    """The listings of ``folder`` that went on from an empty page (its token has a dot)."""
    return sum(1 for r in emulator.requests if r.method == "GET" and r.path == "/drive/v2/files"
               and folder in (r.query.get("q") or "") and "." in (r.query.get("pageToken") or ""))


def test_a_folder_pull_goes_past_empty_pages(emulator, env, tmp_path):
    files = {"data/a.bin": b"a" * 10, "data/b.bin": b"b" * 20, "data/sub/c.bin": b"c" * 30}
    for path, data in files.items():
        emulator.add_file(path, data)
    folder = emulator.find("data")["id"]
    emulator.faults.empty_pages(times=2, query=folder)   # the folder's own listing
    code, _, err = run("pull", "-q", "drive:data", str(tmp_path / "d"))
    assert code == 0, err
    for path, data in files.items():
        assert (tmp_path / "d" / path).read_bytes() == data, path
    assert _empty_pages_served(emulator, folder) == 2


def test_a_push_with_delete_goes_past_empty_pages(emulator, env, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "kept.txt").write_bytes(b"k" * 10)
    (src / "new.txt").write_bytes(b"n" * 10)
    emulator.add_file("runs/logs/kept.txt", b"k" * 10)
    old = emulator.add_file("runs/logs/old.txt", b"o" * 10)
    folder = emulator.find("runs/logs")["id"]
    emulator.faults.empty_pages(times=2, query=folder)
    code, out, err = run("push", str(src), "drive:runs/logs", "--delete")
    assert code == 0, err
    live = sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                  and f["mimeType"] != "application/vnd.google-apps.folder")
    assert live == ["kept.txt", "new.txt"], live          # one copy each; old.txt trashed
    assert emulator.store.get(old)["trashed"]
    uploads = [r for r in emulator.requests if r.path.startswith("/upload/") and r.method == "POST"]
    assert len(uploads) == 1, uploads                      # new.txt only
    assert _empty_pages_served(emulator, folder) == 2
