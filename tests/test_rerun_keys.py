"""A rerun on a staged copy is one metadata call, also for files reached through a resource
key (a sharing link, ``drive:id:<ID>:<KEY>/...``, a shortcut carrying its target's key): the
stamp keeps the keys the file's metadata request needs, so the recheck by id is not a 404."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from _envs import env_local_retries  # noqa: F401  (the env fixture)
from drivestage.cli import cli

TEACHER = "teacher@school.edu"
KEYS = "X-Goog-Drive-Resource-Keys"


def pull(*args):
    result = CliRunner().invoke(cli, ["pull", *args, "-q", "--json"], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _twice(emulator, src, dest):
    """Pull ``src`` into ``dest`` twice; the second run's result and its requests."""
    code, out, err = pull(src, dest)
    assert code == 0, err
    emulator.clear_requests()
    code, out, err = pull(src, dest)
    assert code == 0, err
    return json.loads(out), list(emulator.requests)


@pytest.mark.parametrize("own_key", [None, "0-fileKEY"])
def test_a_rerun_below_a_keyed_folder_is_one_call(emulator, env, tmp_path, own_key):
    folder = emulator.add_folder("Course", owner=TEACHER, resource_key="0-folderKEY")
    emulator.add_folder("Course/sub", owner=TEACHER)
    fid = emulator.add_file("Course/sub/x.bin", b"x" * 1000, owner=TEACHER, resource_key=own_key)
    result, sent = _twice(emulator, f"drive:id:{folder}:0-folderKEY/sub/x.bin",
                          str(tmp_path / "d"))
    assert result["action"] == "cached" and result["api_calls"] == 1
    assert [(r.kind, r.status) for r in sent] == [("files.get", 200)]
    assert sent[0].path.endswith(fid)
    assert (tmp_path / "d" / "x.bin").read_bytes() == b"x" * 1000


def test_a_rerun_of_a_keyed_file_link_is_one_call(emulator, env, tmp_path):
    fid = emulator.add_file("old/VOC07.zip", b"zip bytes", owner=TEACHER, resource_key="0-abcKEY")
    link = f"https://drive.google.com/file/d/{fid}/view?usp=sharing&resourcekey=0-abcKEY"
    result, sent = _twice(emulator, link, str(tmp_path / "d"))
    assert result["action"] == "cached" and result["api_calls"] == 1
    assert [(r.kind, r.status, r.headers.get(KEYS)) for r in sent] == \
        [("files.get", 200, f"{fid}/0-abcKEY")]


def test_a_rerun_through_a_shortcut_to_a_keyed_folder_is_one_call(emulator, env, tmp_path):
    folder = emulator.add_folder("VOC", owner=TEACHER, resource_key="0-shortcutKEY")
    emulator.add_file("VOC/x.zip", b"xx", owner=TEACHER)
    emulator.add_shortcut("VOC", folder)
    result, sent = _twice(emulator, "drive:VOC/x.zip", str(tmp_path / "d"))
    assert result["action"] == "cached" and result["api_calls"] == 1
    assert [(r.kind, r.status) for r in sent] == [("files.get", 200)]


def test_a_stamped_key_the_owner_changed_costs_one_404_then_resolves(emulator, env, tmp_path):
    """The owner rotated the folder's key (a new link): the stamp's key answers 404, and the
    path, with the key the user gives now, is resolved as usual."""
    folder = emulator.add_folder("Course", owner=TEACHER, resource_key="0-oldKEY")
    emulator.add_file("Course/x.bin", b"x", owner=TEACHER)
    dest = str(tmp_path / "d")
    assert pull(f"drive:id:{folder}:0-oldKEY/x.bin", dest)[0] == 0
    emulator.set_resource_key(folder, "0-newKEY")
    code, out, err = pull(f"drive:id:{folder}:0-newKEY/x.bin", dest)
    assert code == 0, err
    assert json.loads(out)["action"] == "cached"
    assert os.listdir(dest) == [".drivestage", "x.bin"] or sorted(os.listdir(dest)) == \
        [".drivestage", "x.bin"]
