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

from _messages import error_line as error
from _messages import renders, shown
from drivestage.cli import cli


@pytest.fixture
def env(local_state, drive_env, fast_retries):
    return local_state


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
