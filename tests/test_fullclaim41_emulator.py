"""room41: the emulator's answer to a custom property's write while the account's storage is
full. A property takes no storage and no reference says Drive refuses its write then; Google's
help says that at the storage limit no one can edit the files the account owns. So it is
taken by default, and ``emulator.full_refuses_property_writes`` makes ``properties.insert`` /
``delete`` on a My Drive item answer 403 storageQuotaExceeded while not a byte is free (the
trainer's lease claim on a full Drive must hold under both). Through the real googleapiclient
discovery client."""
from __future__ import annotations

import json

import pytest
from googleapiclient.errors import HttpError

from _drive_clients import drive_service

PUBLIC = {"key": "trainer-lease-0123456789abcdef", "value": "1|2.0|2.0|7|tag|0|host",
          "visibility": "PUBLIC"}


def _keys(emulator, file_id: str) -> list[str]:
    return sorted(p["key"] for p in emulator.properties_of(file_id))


def test_a_full_drive_takes_a_property_write_unless_told_to_refuse_it(emulator):
    service = drive_service(emulator.url)
    folder = emulator.add_folder("runs/exp")
    emulator.add_file("runs/exp/epoch_001.pt", b"x" * 1000)
    emulator.quota_bytes = emulator.store.quota_bytes = 1000   # (full: not a byte free)
    props = service.properties()
    props.insert(fileId=folder, body=PUBLIC).execute()   # (takes no storage: taken)
    assert _keys(emulator, folder) == [PUBLIC["key"]]
    emulator.full_refuses_property_writes = True
    other = dict(PUBLIC, key="trainer-lease-fedcba9876543210")
    for call in (lambda: props.insert(fileId=folder, body=other).execute(),
                 lambda: props.delete(fileId=folder, propertyKey=PUBLIC["key"],
                                      visibility="PUBLIC").execute()):
        with pytest.raises(HttpError) as err:
            call()
        e = json.loads(err.value.content)["error"]["errors"][0]
        assert (err.value.resp.status, e["reason"]) == (403, "storageQuotaExceeded")
        assert _keys(emulator, folder) == [PUBLIC["key"]]   # (a refusal changes nothing)
    emulator.quota_bytes = emulator.store.quota_bytes = 1001   # (a byte free: taken)
    props.insert(fileId=folder, body=other).execute()
    props.delete(fileId=folder, propertyKey=PUBLIC["key"], visibility="PUBLIC").execute()
    assert _keys(emulator, folder) == [other["key"]]
