"""docs/troubleshooting.md: the limits Drive added in 2023-2024 (its API release notes: "A
user's My Drive can't contain more than 100 levels of nested folders", November 2023; "Each
user can have up to 500 million items that were created by that account", January 2024),
made to happen against the emulator, which now enforces both with the bodies of Drive's
"Resolve errors" guide (``myDriveHierarchyDepthLimitExceeded``,
``activeItemCreationLimitExceeded``). drivestage called either "permission denied … Check
that this account can access the file (sharing settings, shared drive membership)", which
sends the user to the wrong place. See tests/_messages.py.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line as error
from _messages import renders, shown
from drivestage.cli import cli


def run(*args: str) -> tuple[int, str]:
    """``drivestage ARGS`` in this process: its exit code and its stderr."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def logs(tmp_path, **files: bytes) -> str:
    src = tmp_path / "logs"
    src.mkdir(exist_ok=True)
    for name, data in files.items():
        (src / name).write_bytes(data)
    return str(src)


@renders("My Drive's folders would nest deeper than Drive allows")
def test_a_folder_too_deep_in_my_drive(emulator, env, tmp_path):
    deep = "/".join(["d"] * 100)            # the deepest a folder may be
    emulator.add_folder(deep)
    code, err = run("push", logs(tmp_path, **{"a.pt": b"a"}), f"drive:{deep}/run")
    assert code == 1
    line = error(err)
    assert "(HTTP 403 myDriveHierarchyDepthLimitExceeded: Your My Drive can't contain more " \
        "than 100 levels of folders." in line
    shown("My Drive's folders would nest deeper than Drive allows", line)
    assert "permission denied" not in line
    assert emulator.find(f"{deep}/run") is None
    # One level less is still allowed, and files go into the deepest folder.
    code, err = run("push", logs(tmp_path, **{"a.pt": b"a"}),
                    f"drive:{deep.rsplit('/', 1)[0]}/run")
    assert code == 0, err
    code, err = run("push", logs(tmp_path, **{"a.pt": b"a"}), f"drive:{deep}")
    assert code == 0, err
    assert emulator.find(f"{deep}/a.pt") is not None


@renders("this account has created as many items as Drive allows")
def test_an_account_that_created_all_the_items_drive_allows(emulator, env, tmp_path):
    emulator.add_file("runs/old.pt", b"o")
    emulator.set_item_creation_limit(2)     # the folder and old.pt
    code, err = run("push", logs(tmp_path, **{"new.pt": b"n"}), "drive:runs")
    assert code == 1
    line = error(err)
    assert "(HTTP 403 activeItemCreationLimitExceeded: This account has exceeded the " \
        "creation limit of 500 million items." in line
    shown("this account has created as many items as Drive allows", line)
    assert "permission denied" not in line
    assert emulator.find("runs/new.pt") is None
    emulator.set_item_creation_limit(3)
    code, err = run("push", logs(tmp_path, **{"new.pt": b"n"}), "drive:runs")
    assert code == 0, err
    assert emulator.find("runs/new.pt") is not None


@renders("downloading it is turned off even for editors like you")
def test_a_file_that_even_editors_may_not_download(emulator, env, tmp_path):
    """Drive's download restrictions (``downloadRestrictions.itemDownloadRestriction.
    restrictedForWriters``: "if true, download is also restricted for readers"; a shared
    drive's restriction or an organisation's data rules do the same) refuse an editor too.
    drivestage told the editor to ask the owner "to make you an editor"."""
    folder = emulator.add_folder("Team", owner="lead@lab.org", shared_with_me="writer")
    emulator.add_shortcut("Team", folder)
    emulator.add_file("Team/notes.txt", b"n" * 100, owner="lead@lab.org")
    data = emulator.add_file("Team/data.zip", b"d" * 100, owner="lead@lab.org")
    emulator.restrict_download(data, writers=True)
    code, err = run("pull", "-q", "drive:Team/data.zip", str(tmp_path / "d"))
    assert code == 1
    line = error(err)
    assert line.startswith("Error: drive:Team/data.zip: downloading it is turned off even for "
                           "editors like you (Drive reports canDownload false for this "
                           "account)"), line
    shown("downloading it is turned off even for editors like you", line)
    assert "make you an editor" not in line
    assert emulator.api_calls("media.download") == 0
    # A folder pull says so while it lists, with the way to pull the rest.
    code, err = run("pull", "-q", "drive:Team", str(tmp_path / "d"))
    assert code == 1
    line = error(err)
    assert "downloading it is turned off even for editors like you" in line
    assert line.endswith("Or pull the rest of the folder without it: --exclude 'data.zip'")
    # The emulator: an editor is refused the bytes too, the owner is not.
    from googleapiclient.errors import HttpError
    from drivestage.drive import connect

    service = connect(api_root=emulator.url, token="test-token").service
    with pytest.raises(HttpError) as refused:
        service.files().get_media(fileId=data, supportsAllDrives=True).execute()
    assert refused.value.resp.status == 403
    assert refused.value.error_details[0]["reason"] == "cannotDownloadFile"
