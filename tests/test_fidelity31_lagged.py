"""fidelity31: attackhs31 asks ``files.get`` for the size before it calls a 206 or 416 of
another size a change on Drive. Drive's listings are eventually consistent, its reads by id
are not (the emulator's ``lag_listing``): a file updated in place by another client while the
listing still shows the old version must still end the pull at once as changed, naming the
new size, never as a broken answer retried. Real PyDrive2/googleapiclient over HTTP against
the emulator.
"""
from __future__ import annotations

import os

import pytest
from googleapiclient.http import MediaInMemoryUpload

import _cli
from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect

KiB = 1024


@pytest.mark.parametrize("new_size", [900 * KiB, 100 * KiB], ids=["larger", "smaller"])
def test_a_file_updated_in_place_behind_a_lagging_listing_is_a_change(emulator, env, tmp_path,
                                                                     new_size):
    fid = emulator.add_file("F/d.bin", os.urandom(600 * KiB))
    emulator.faults.lag_listing(updated=10)
    service = connect(api_root=emulator.url, token="test-token").service
    service.files().update(fileId=fid, supportsAllDrives=True, media_body=MediaInMemoryUpload(
        os.urandom(new_size), mimetype="application/octet-stream")).execute()
    code, _, err = _cli.run("pull", "drive:F/d.bin", str(tmp_path / "dest"), "-q")
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line == (f"Error: drive:F/d.bin changed on Drive while downloading (size "
                    f"{600 * KiB} became {new_size}); run again"), err
    mine = [r.query for r in emulator.requests if r.path.endswith(fid)]
    # One read of the bytes, one files.get of the size (current: reads by id are), no retry.
    assert [q.get("alt") for q in mine if q.get("alt") == "media"] == ["media"], mine
    assert [q for q in mine if q.get("fields") == "fileSize"] != [], mine
    assert not (tmp_path / "dest" / "d.bin").exists()
