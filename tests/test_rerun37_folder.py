"""The rerun of a folder pull whose files are all staged asks Drive once: one files.list
finds the folder (by the record the earlier pull kept, :mod:`drivestage.folder_record`) and
lists its children (:mod:`drivestage.drive.relist`); it used to take two requests (resolve
the path, list the folder). Attacks what that one answer could get wrong: a folder renamed,
moved, trashed or replaced at its path, a same-named folder beside it, a file added on Drive,
a record damaged or naming another folder, a member changed locally. Each must end as a
pull into a fresh DEST (or the rerun before this change) would: the same files, the same
error line and exit code.
"""
from __future__ import annotations

import json
import os

import pytest

from tests._cli import run
from _archives import a_zip as _zip


pytestmark = pytest.mark.usefixtures("drive_env", "local_state")


def _folder(emulator, name: str = "F", n: int = 3) -> str:
    """``name/s0.zip`` … each holding ``ds/x`` (shared) and ``ds/own<i>``; the folder's id."""
    for i in range(n):
        emulator.add_file(f"{name}/s{i}.zip", _zip({"ds/x": b"x%d" % i, f"ds/own{i}": b"o%d" % i}))
    return emulator.find(name)["id"]


def _pull(emulator, src: str, dest) -> tuple[int, dict, str, list]:
    """``pull SRC DEST -x --json``: (exit code, the JSON, stderr, the requests it sent)."""
    before = len(emulator.requests)
    code, out, err = run("pull", src, str(dest), "-x", "-q", "--json")
    return code, (json.loads(out) if code == 0 else {}), err, emulator.requests[before:]


def _error(err: str) -> str:
    return [line for line in err.splitlines() if line.startswith("Error:")][0]


def test_a_staged_folders_rerun_is_one_listing(emulator, tmp_path):
    _folder(emulator)
    code, first, _err, sent = _pull(emulator, "drive:F", tmp_path / "d")
    # (+1: the folder listed again once something came, attack49's check that nothing
    # changed on Drive during the pull)
    assert code == 0 and len([r for r in sent if r.kind != "media.download"]) == 3
    for _ in range(2):
        code, again, err, sent = _pull(emulator, "drive:F", tmp_path / "d")
        assert code == 0, err
        assert [r.kind for r in sent] == ["files.list"]
        assert again["api_calls"] == 1 and again["actions"] == {"cached": 3}
    assert (tmp_path / "d/F/ds/x").read_bytes() == b"x2"


def test_a_member_changed_locally_is_put_back_in_one_request(emulator, tmp_path):
    _folder(emulator)
    assert _pull(emulator, "drive:F", tmp_path / "d")[0] == 0
    (tmp_path / "d/F/ds/own1").write_bytes(b"O1")   # same size, other bytes, now
    (tmp_path / "d/F/ds/x").write_bytes(b"y2")
    code, again, err, sent = _pull(emulator, "drive:F", tmp_path / "d")
    assert code == 0, err
    assert [r.kind for r in sent] == ["files.list"]
    assert (tmp_path / "d/F/ds/own1").read_bytes() == b"o1"
    assert (tmp_path / "d/F/ds/x").read_bytes() == b"x2"
    assert set(again["actions"]) <= {"cached", "extract"} and again["fetched"] == 0
    assert again["actions"].get("extract")


def test_a_file_added_on_drive_comes_with_the_one_listing(emulator, tmp_path):
    _folder(emulator)
    assert _pull(emulator, "drive:F", tmp_path / "d")[0] == 0
    emulator.add_file("F/t.zip", _zip({"ds/x": b"tt"}))
    code, again, err, sent = _pull(emulator, "drive:F", tmp_path / "d")
    assert code == 0, err
    # (the second: the folder listed again once something came, attack49's check that
    # nothing changed on Drive during the pull)
    assert [r.kind for r in sent if r.kind != "media.download"] == ["files.list"] * 2
    assert again["actions"] == {"cached": 3, "download": 1}
    assert (tmp_path / "d/F/ds/x").read_bytes() == b"tt"


def test_a_folder_renamed_and_replaced_at_its_path_pulls_the_new_one(emulator, tmp_path):
    old = _folder(emulator)
    assert _pull(emulator, "drive:F", tmp_path / "d")[0] == 0
    emulator.store.update_meta(old, {"title": "G"})
    emulator.add_file("F/new.zip", _zip({"ds/n": b"new"}))
    code, again, err, _sent = _pull(emulator, "drive:F", tmp_path / "d")
    assert code == 0, err
    assert again["id"] == emulator.find("F")["id"] != old
    assert [f["name"] for f in again["files"]] == ["new.zip"]
    assert (tmp_path / "d/F/ds/n").read_bytes() == b"new"
    # And its next rerun is one request again, of the new folder.
    code, again, err, sent = _pull(emulator, "drive:F", tmp_path / "d")
    assert code == 0 and [r.kind for r in sent] == ["files.list"]
    assert [f["name"] for f in again["files"]] == ["new.zip"]


@pytest.mark.parametrize("change", ["renamed", "trashed", "moved"])
def test_a_folder_gone_from_its_path_fails_as_a_first_pull_does(emulator, tmp_path, change):
    old = _folder(emulator)
    emulator.add_folder("elsewhere")
    assert _pull(emulator, "drive:F", tmp_path / "d")[0] == 0
    if change == "renamed":
        emulator.store.update_meta(old, {"title": "f"})   # (Drive's title match ignores case)
    elif change == "trashed":
        emulator.store.update_meta(old, {"labels": {"trashed": True}})
    else:
        emulator.store.update_meta(old, {}, add_parents=[emulator.find("elsewhere")["id"]],
                                   remove_parents=["root"])
    code, _out, err, _sent = _pull(emulator, "drive:F", tmp_path / "d")
    fresh_code, _o, fresh_err, _s = _pull(emulator, "drive:F", tmp_path / "fresh")
    assert (code, _error(err)) == (fresh_code, _error(fresh_err).replace("/fresh", "/d"))
    # (trashed40: a path into the trash says so, on a first pull and a rerun alike)
    assert code == 1 and ("Error: drive:F is in the trash; restore it first" if
                          change == "trashed" else "drive:F not found") in err
    assert sorted(os.listdir(tmp_path / "d/F/ds")) == ["own0", "own1", "own2", "x"]


def test_a_same_named_folder_beside_it_is_refused_as_on_a_first_pull(emulator, tmp_path):
    _folder(emulator)
    assert _pull(emulator, "drive:F", tmp_path / "d")[0] == 0
    emulator.store.update_meta(emulator.add_folder("Z"), {"title": "F"})   # a second F
    code, _out, err, _sent = _pull(emulator, "drive:F", tmp_path / "d")
    fresh_code, _o, fresh_err, _s = _pull(emulator, "drive:F", tmp_path / "fresh")
    assert code == fresh_code == 1
    assert "matches 2 items with that exact name" in _error(err)
    assert _error(err) == _error(fresh_err).replace("/fresh", "/d")


def test_a_deeper_path_checks_the_recorded_parent(emulator, tmp_path):
    _folder(emulator, "a/b/F")
    assert _pull(emulator, "drive:a/b/F", tmp_path / "d")[0] == 0
    code, again, err, sent = _pull(emulator, "drive:a/b/F", tmp_path / "d")
    assert code == 0 and [r.kind for r in sent] == ["files.list"], err
    assert again["actions"] == {"cached": 3}


def _record(tmp_path):
    state = tmp_path / "d/F/.drivestage"
    return [state / n for n in os.listdir(state) if n.endswith(".pulled")]


@pytest.mark.parametrize("damage", ["not json", "another folder", "a link"])
def test_a_damaged_or_forged_record_only_costs_the_resolve(emulator, tmp_path, damage):
    _folder(emulator)
    other = _folder(emulator, "elsewhere/F", n=1)
    assert _pull(emulator, "drive:F", tmp_path / "d")[0] == 0
    [record] = _record(tmp_path)
    if damage == "not json":
        record.write_text("{")
    elif damage == "another folder":   # the id and parent of a folder F elsewhere
        body = json.loads(record.read_text())
        body.update(id=other, parent_id=emulator.find("elsewhere")["id"])
        record.write_text(json.dumps(body))
    else:
        target = tmp_path / "forged.json"
        target.write_text(record.read_text())
        record.unlink()
        record.symlink_to(target)
    code, again, err, sent = _pull(emulator, "drive:F", tmp_path / "d")
    assert code == 0, err
    assert again["id"] == emulator.find("F")["id"] and again["actions"] == {"cached": 3}
    # Resolved and listed, as before the record; a record of another folder: asked first.
    assert len(sent) == (3 if damage == "another folder" else 2)
    code, again, err, sent = _pull(emulator, "drive:F", tmp_path / "d")
    assert code == 0 and len(sent) == 1   # (written again by that rerun)


def test_force_and_a_link_to_a_folder_resolve_the_path(emulator, tmp_path):
    _folder(emulator)
    assert _pull(emulator, "drive:F", tmp_path / "d")[0] == 0
    code, out, err = run("pull", "drive:F", str(tmp_path / "d"), "-x", "-q", "--json", "--force")
    assert code == 0, err
    assert json.loads(out)["api_calls"] >= 2


def test_a_rerun_shows_no_bar_and_the_first_pull_does(emulator, tmp_path):
    """The tree's bar is made when a first file transfers: a rerun that downloads nothing
    prints its summary line alone, as a single file's rerun does (it drew a bar of the
    whole tree, its 500 cached files counted in one by one)."""
    _folder(emulator)
    code, _out, first = run("pull", "drive:F", str(tmp_path / "d"), "-x")
    assert code == 0 and "F:   0%|" in first, first   # (the tree's bar, drawn)
    code, out, err = run("pull", "drive:F", str(tmp_path / "d"), "-x")
    assert code == 0, err
    assert err.splitlines() == [f"drive:F -> {tmp_path / 'd' / 'F'}: 3 files (3 already "
                                f"staged), {_size(tmp_path)}, 6 members already staged, "
                                f"{err.rsplit(', ', 1)[1].strip()}"]


def _size(tmp_path) -> str:
    from drivestage.sizes import format_size

    return format_size(sum(os.path.getsize(tmp_path / f"d/F/s{i}.zip") for i in range(3)))


def test_the_rerun_imports_neither_torch_nor_tqdm(emulator, tmp_path):
    """In a process of its own (as a notebook cell runs it): the rerun path's imports."""
    import subprocess
    import sys

    from tests._cli import child_env

    _folder(emulator)
    assert _pull(emulator, "drive:F", tmp_path / "d")[0] == 0
    code = ("import sys\nfrom drivestage.entry import main\nsys.argv = ['drivestage', 'pull', "
            f"'drive:F', {str(tmp_path / 'd')!r}, '-x']\ntry:\n    main()\nexcept SystemExit "
            "as e:\n    assert not e.code\nprint(sorted({'torch', 'tqdm'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], env=child_env(emulator),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_a_folder_of_a_shared_drive_is_found_and_listed_in_one_listing(emulator, tmp_path):
    team = emulator.add_shared_drive("Team")
    for i in range(2):
        emulator.add_file(f"F/s{i}.zip", _zip({"ds/x": b"x%d" % i}), drive_id=team)
    assert _pull(emulator, "drive:shared/Team/F", tmp_path / "d")[0] == 0
    code, again, err, sent = _pull(emulator, "drive:shared/Team/F", tmp_path / "d")
    assert code == 0, err
    assert [r.kind for r in sent if r.kind == "files.list"] == ["files.list"]
    assert again["actions"] == {"cached": 2} and (tmp_path / "d/F/ds/x").read_bytes() == b"x1"


def test_a_folder_shared_with_me_is_resolved_as_before(emulator, tmp_path):
    emulator.add_folder("F", owner="teacher@example.com", shared_with_me=True)
    emulator.add_file("F/s0.zip", _zip({"ds/x": b"x0"}), owner="teacher@example.com")
    code, first, err, _sent = _pull(emulator, "drive:shared-with-me/F", tmp_path / "d")
    assert code == 0, err
    code, again, err, sent = _pull(emulator, "drive:shared-with-me/F", tmp_path / "d")
    assert code == 0, err
    assert again["actions"] == {"cached": 1}
    assert len([r for r in sent if r.kind == "files.list"]) == 2   # (no query names it)


def test_a_server_refusing_the_query_costs_the_resolve_not_the_pull(emulator, tmp_path):
    _folder(emulator)
    assert _pull(emulator, "drive:F", tmp_path / "d")[0] == 0
    emulator.faults.inject(method="GET", path=r"/drive/v2/files(\?|$)", status=400,
                           reason="invalid", message="Invalid query")
    code, again, err, sent = _pull(emulator, "drive:F", tmp_path / "d")
    assert code == 0, err
    assert again["actions"] == {"cached": 3}
    assert [r.status for r in sent] == [400, 200, 200]   # (refused, then resolved, listed)
