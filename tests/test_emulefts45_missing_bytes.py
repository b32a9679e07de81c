"""A file whose bytes were removed from the emulator's data folder by hand (emulefts45): its
downloads answered 404 "File not found" while files.get found it, so a client took the file
for deleted. Now a 500 naming the file (Drive's own failure, to a client: retried a bounded
number of times), and one log line naming the file and the path removed."""
from __future__ import annotations

import logging
import os

import pytest
from googleapiclient.errors import HttpError

from _cli import run
from drivestage.drive import connect


def test_a_download_of_bytes_removed_by_hand_is_a_server_error_said_once_in_the_log(
        emulator, drive_env, tmp_path, monkeypatch, caplog):
    file_id = emulator.add_file("runs/best.pt", b"weights")
    blob = emulator.store.blob_path(file_id)
    os.unlink(blob)
    service = connect(api_root=emulator.url, token="t").service
    assert service.files().get(fileId=file_id).execute()["title"] == "best.pt"
    caplog.set_level(logging.ERROR, logger="drivestage.emulator")
    for _ in range(2):
        with pytest.raises(HttpError) as err:
            service.files().get_media(fileId=file_id).execute()
        assert err.value.resp.status == 500
        assert f"The bytes of file {file_id} are missing from the emulator's data folder " \
               f"({file_id} was removed)." in str(err.value)
    with pytest.raises(HttpError) as err:    # a copy of it: the same answer
        service.files().copy(fileId=file_id, body={"title": "copy.pt"}).execute()
    assert err.value.resp.status == 500 and f"The bytes of file {file_id} are missing" \
        in str(err.value)
    said = [r.getMessage() for r in caplog.records if r.name.startswith("drivestage.emulator")]
    assert said == [f"the bytes of file {file_id} ('best.pt') are missing: {blob} was removed "
                    "from the data folder; its downloads answer 500 (restore the file, or "
                    "delete it)"]

    # drivestage retries it a bounded number of times, then says so and exits 1.
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.001")
    monkeypatch.setenv("DRIVESTAGE_RETRY_JITTER", "0")
    before = len(emulator.requests)
    code, out, err = run("pull", "drive:runs/best.pt", str(tmp_path / "dest"))
    assert code == 1, err
    assert "Error: download drive:runs/best.pt bytes 0-6: still failing after 3 attempts (500 " \
           f"backendError: The bytes of file {file_id} are missing from the emulator's data " \
           f"folder ({file_id} was removed).); try again later" in err, err
    downloads = [r for r in emulator.requests[before:] if r.kind == "media.download"]
    assert [r.status for r in downloads] == [500] * 3
    assert not (tmp_path / "dest" / "best.pt").exists()

    # A file deleted for real still answers 404.
    other = emulator.add_file("runs/other.pt", b"x")
    service.files().delete(fileId=other).execute()
    with pytest.raises(HttpError) as err:
        service.files().get_media(fileId=other).execute()
    assert err.value.resp.status == 404
