"""push --include creates only the folders that hold what it sends (include29): a push of the
zips of a VOC tree made every folder of SRC on Drive, empty. ``--delete`` still leaves alone
what the filters left out, the Drive folders the push no longer makes included."""
from __future__ import annotations

import os

from drivestage.upload_tree import push


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def _voc(root):
    """A dataset folder: two zips, and an extracted tree beside them."""
    _write(os.path.join(root, "zips", "train.zip"), b"PK-train")
    _write(os.path.join(root, "zips", "old", "val.zip"), b"PK-val")
    for rel in ("VOCdevkit/VOC2007/JPEGImages/000001.jpg",
                "VOCdevkit/VOC2007/Annotations/000001.xml",
                "VOCdevkit/VOC2012/ImageSets/Main/train.txt"):
        _write(os.path.join(root, rel), b"x")
    os.makedirs(os.path.join(root, "VOCdevkit", "empty"))


def _live(emu, top="Data/voc"):
    """{relative path: "dir" or the file's bytes' md5} of the live items under ``top``."""
    by_id = {f["id"]: f for f in emu.files()}
    top_id = emu.find(top)["id"]
    out = {}
    for f in emu.files():
        if f["labels"]["trashed"]:
            continue
        parts, cur = [f["title"]], f
        while True:
            parent = cur["parents"][0]["id"] if cur.get("parents") else None
            if parent is None or parent not in by_id and parent != top_id:
                parts = None
                break
            if parent == top_id:
                break
            cur = by_id[parent]
            if cur["labels"]["trashed"]:
                parts = None
                break
            parts.append(cur["title"])
        if parts is not None:
            out["/".join(reversed(parts))] = ("dir" if f["mimeType"].endswith(".folder")
                                              else f.get("md5Checksum"))
    return out


def test_include_creates_only_the_folders_that_hold_what_it_sends(emulator, store, env):
    src = str(env / "voc")
    _voc(src)
    result = push(src, "Data/voc", store=store, include=["*.zip"])
    assert sorted(_live(emulator)) == ["zips", "zips/old", "zips/old/val.zip", "zips/train.zip"]
    assert sorted(result.uploaded) == ["zips/old/val.zip", "zips/train.zip"]
    assert result.folders_created == 2


def test_a_folder_the_include_names_is_made_even_when_empty(emulator, store, env):
    src = str(env / "voc")
    _voc(src)
    push(src, "Data/voc", store=store, include=["*.zip", "VOCdevkit/empty"])
    assert sorted(_live(emulator)) == ["VOCdevkit", "VOCdevkit/empty", "zips", "zips/old",
                                       "zips/old/val.zip", "zips/train.zip"]


def test_without_include_every_folder_is_made_as_before(emulator, store, env):
    """An empty local folder is mirrored; so is one whose files are all excluded (it is an
    empty folder once they are left out)."""
    src = str(env / "voc")
    _voc(src)
    push(src, "Data/voc", store=store, exclude=["*.jpg"])
    live = _live(emulator)
    assert live["VOCdevkit/empty"] == "dir"
    assert live["VOCdevkit/VOC2007/JPEGImages"] == "dir"
    assert "VOCdevkit/VOC2007/JPEGImages/000001.jpg" not in live
    assert live["VOCdevkit/VOC2012/ImageSets/Main/train.txt"] is not None


def test_delete_with_include_leaves_the_folders_it_does_not_make_and_what_they_hold(
        emulator, store, env):
    src = str(env / "voc")
    _voc(src)
    push(src, "Data/voc", store=store)            # everything, once
    emulator.add_file("Data/voc/VOCdevkit/VOC2007/stale.zip", b"PK-stale")
    before = _live(emulator)
    result = push(src, "Data/voc", store=store, include=["*.zip"], delete=True)
    # the zip SRC no longer has goes; the folders and the files --include left out stay
    assert result.deleted == ["VOCdevkit/VOC2007/stale.zip"]
    after = _live(emulator)
    assert after == {k: v for k, v in before.items() if k != "VOCdevkit/VOC2007/stale.zip"}


def test_a_rerun_with_include_makes_nothing_and_lists_each_folder_once(emulator, store, env):
    src = str(env / "voc")
    _voc(src)
    push(src, "Data/voc", store=store, include=["*.zip"])
    emulator.clear_requests()
    result = push(src, "Data/voc", store=store, include=["*.zip"])
    assert result.uploaded == [] and result.folders_created == 0
    api = [r for r in emulator.requests if not r.path.startswith("/_emulator")]
    assert not [r for r in api if r.method == "POST"], [(r.method, r.path) for r in api]
    # 3 folders on Drive (voc, zips, zips/old): at most 3 requests each, as bench/push.py holds
    assert len(api) <= 3 * 3, [(r.method, r.path) for r in api]
    assert sorted(_live(emulator)) == ["zips", "zips/old", "zips/old/val.zip", "zips/train.zip"]


def test_a_mirror_with_include_makes_a_folder_once_something_it_sends_is_there(
        emulator, store, env):
    from drivestage.mirror import Mirror

    src = env / "voc"
    _voc(str(src))
    m = Mirror(str(src), "Data/voc", None, store=store, include=["*.zip"]).start()
    try:
        m.flush(60)
        assert sorted(_live(emulator)) == ["zips", "zips/old", "zips/old/val.zip",
                                           "zips/train.zip"]
        _write(str(src / "VOCdevkit" / "VOC2012" / "extra.zip"), b"PK-extra")
        m.sync_now()
        m.flush(60)
    finally:
        m.stop(60)
    assert sorted(_live(emulator)) == ["VOCdevkit", "VOCdevkit/VOC2012",
                                       "VOCdevkit/VOC2012/extra.zip", "zips", "zips/old",
                                       "zips/old/val.zip", "zips/train.zip"]


def test_delete_with_include_leaves_what_it_filtered_out_in_a_folder_src_lacks(
        emulator, store, env):
    """A Drive folder SRC does not have went whole, with the files --include left out (the
    README promises they stay): `notes/readme.txt` was trashed by a push of the zips."""
    src = str(env / "voc")
    _voc(src)
    emulator.add_file("Data/voc/notes/readme.txt", b"mine")
    emulator.add_file("Data/voc/notes/old.zip", b"PK-old")
    emulator.add_file("Data/voc/notes/deeper/keep.txt", b"mine too")
    emulator.add_file("Data/voc/gone/a.zip", b"PK-a")        # holds only what --include takes
    emulator.add_file("Data/voc/gone/inner/b.zip", b"PK-b")
    result = push(src, "Data/voc", store=store, include=["*.zip"], delete=True)
    assert sorted(result.deleted) == ["gone", "notes/old.zip"]
    live = _live(emulator)
    assert sorted(k for k in live if k.startswith(("notes", "gone"))) == [
        "notes", "notes/deeper", "notes/deeper/keep.txt", "notes/readme.txt"]


def test_delete_with_exclude_leaves_what_it_filtered_out_in_a_folder_src_lacks(
        emulator, store, env):
    src = str(env / "voc")
    _voc(src)
    emulator.add_file("Data/voc/old/train.log", b"excluded: mine")
    emulator.add_file("Data/voc/old/stale.txt", b"stale")
    result = push(src, "Data/voc", store=store, exclude=["*.log"], delete=True)
    assert result.deleted == ["old/stale.txt"]
    assert _live(emulator)["old/train.log"] is not None
