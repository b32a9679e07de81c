"""fidelity32: a refusal of a removal that is not Drive's is not read as a missing role.

In a shared drive drivestage deletes for good and, where Drive refuses that (403
insufficientFilePermissions: a Content manager, "Trash or delete files and folders" and the
v2 files.delete reference: "the user must be an organizer on the parent folder"), moves the
item to the trash; where both are refused it says the account lacks the roles. A network
filter's 403 web page on the DELETE was taken for Drive's refusal: the trash was tried too,
and the line said "cannot be removed: in a shared drive, moving an item to the trash needs the
Content manager role ... this account has neither" to the shared drive's Manager. In-process
CLI against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import _cli
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply

PAGE = (b"<!DOCTYPE html><html><head><title>Access Denied</title></head><body><h1>Access "
        b"Denied</h1><p>The site you are trying to reach is blocked by your organization's "
        b"policy (Category: Cloud Storage).</p></body></html>")


def _blocked(status: int, headers: dict, body: bytes) -> Reply:
    return Reply(403, {"Content-Type": "text/html; charset=utf-8",
                       "Content-Length": str(len(PAGE))}, [PAGE])


def test_a_filter_page_on_a_delete_is_no_missing_role(emulator, proxy, liar_env):
    team = emulator.add_shared_drive("Team", role="organizer")
    ids = [emulator.add_file(f"run/epoch_{i:03d}.pt", bytes([i]), drive_id=team)
           for i in (1, 2)]
    # A filter that stops every DELETE (and the batch that would carry one): Drive never
    # sees them.
    proxy.on("DELETE", r"^/drive/v2/files/", _blocked, forward=False)
    proxy.on("POST", r"^/batch/", _blocked, forward=False)
    code, out, err = _cli.run("prune", "drive:shared/Team/run", "--keep-last", "1")
    line = one_error_line(code, err)
    assert "Content manager" not in line and "this account has neither" not in line, line
    assert "by something between here and Drive, not by Drive" in line, line
    assert proxy.count("POST", r"/trash") == 0, line   # Drive never refused: no trash tried
    assert [emulator.store.get(i)["trashed"] for i in ids] == [False, False]


def test_a_filter_page_on_the_trash_after_drives_refusal_is_no_missing_role(emulator, proxy,
                                                                            liar_env):
    """A Content manager: Drive refuses the delete (its JSON 403), the filter the trash."""
    team = emulator.add_shared_drive("Team", role="fileOrganizer")
    ids = [emulator.add_file(f"run/epoch_{i:03d}.pt", bytes([i]), drive_id=team)
           for i in (1, 2)]
    proxy.on("POST", r"/trash", _blocked, forward=False)
    proxy.on("POST", r"^/batch/", _blocked, forward=False)
    code, out, err = _cli.run("prune", "drive:shared/Team/run", "--keep-last", "1")
    line = one_error_line(code, err)
    assert "this account has neither" not in line, line
    assert line.startswith("Error: trash drive:shared/Team/run/epoch_001.pt: refused (HTTP 403) "
                           "by something between here and Drive, not by Drive"), line
    assert proxy.count("DELETE", r"^/drive/v2/files/") == 1
    assert [emulator.store.get(i)["trashed"] for i in ids] == [False, False]
