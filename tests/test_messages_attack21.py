"""Messages of attack 21 (mirror) that docs/troubleshooting.md quotes, made to happen."""
from __future__ import annotations

import logging

import pytest

from _messages import log_text, renders, shown


@renders("kept changing while it was uploaded; sending it as it is now")
def test_a_log_appended_to_during_each_upload_is_sent_as_it_is_now(
        emulator, proxy, env, tmp_path, fast_retries, caplog):
    """A log a program appends to at every request of its upload: sent from a copy."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push
    from _proxy import Reply

    src = tmp_path / "logs"
    src.mkdir()
    log = src / "train.log"
    log.write_bytes(b"start\n")

    def appended(status: int, headers: dict, body: bytes) -> Reply:
        with open(log, "ab") as fh:
            fh.write(b"step\n")
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", appended)
    proxy.on("POST", r"^/upload/", appended)
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        result = push(str(src), "runs/logs", store=connect(api_root=proxy.url,
                                                           token="test-token"))
    text = log_text([r for r in caplog.records if "sending it as it is now" in r.getMessage()])
    shown("kept changing while it was uploaded; sending it as it is now", text)
    assert result.uploaded == ["train.log"]
    on_drive = emulator.read_bytes(emulator.find("runs/logs/train.log")["id"])
    assert on_drive.startswith(b"start\n") and log.read_bytes().startswith(on_drive)
