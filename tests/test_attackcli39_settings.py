"""Settings a user gets wrong, through the real CLI (attackcli39): each is one ``Error:`` line
and exit 2 before any request, where some were a traceback.

- ``DRIVESTAGE_HTTP_TIMEOUT=1e300`` passed the check (above 0, not inf) and every request
  died in ``OverflowError: timestamp out of range for platform time_t``.
- ``DRIVESTAGE_API_ROOT`` / ``--api-root`` ``http://[::1`` (a bracket lost in a copy) passed
  the ``http(s)://`` check and ended in ``ValueError: Invalid IPv6 URL``.
- ``--credentials`` or ``DRIVESTAGE_TOKEN_FILE`` naming a file that is not UTF-8 text (a
  binary file given by mistake) ended in ``UnicodeDecodeError``.
- ``DRIVESTAGE_RETRY_ATTEMPTS=0`` said ``retry attempts must be at least 1, got 0``: no
  setting named.
"""
from __future__ import annotations

import os

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.fixture
def setup(emulator, drive_env, local_state, tmp_path):
    binary = tmp_path / "key.json"
    binary.write_bytes(b"\xff\xfe{\x00")
    return emulator, dict(os.environ), str(binary)


CREDS = ("is not JSON (it holds bytes that are not UTF-8 text); expected a service-account "
         "key or a token saved by `drivestage auth login`")


@pytest.mark.parametrize("env, args, line", [
    ({"DRIVESTAGE_HTTP_TIMEOUT": "1e300"}, [],
     "Error: DRIVESTAGE_HTTP_TIMEOUT='1e300' is not a number of seconds above 0 and at most "
     "1e9 (e.g. 120, the default)"),
    ({"DRIVESTAGE_HTTP_TIMEOUT": "1e10"}, [],
     "Error: DRIVESTAGE_HTTP_TIMEOUT='1e10' is not a number of seconds above 0 and at most "
     "1e9 (e.g. 120, the default)"),
    ({"DRIVESTAGE_API_ROOT": "http://[::1"}, [],
     "Error: DRIVESTAGE_API_ROOT 'http://[::1' is not a valid URL (Invalid IPv6 URL); give "
     "one like http://127.0.0.1:8765/"),
    ({}, ["--api-root", "http://[::1:8765/"],
     "Error: --api-root 'http://[::1:8765/' is not a valid URL (Invalid IPv6 URL); give "
     "one like http://127.0.0.1:8765/"),
    ({}, ["--api-root", "http://127.0.0.1:99999/"],
     "Error: --api-root 'http://127.0.0.1:99999/' is not a valid URL (Port out of range "
     "0-65535); give one like http://127.0.0.1:8765/"),
    ({"DRIVESTAGE_RETRY_ATTEMPTS": "0"}, [],
     "Error: DRIVESTAGE_RETRY_ATTEMPTS='0' must be at least 1 (attempts per Drive request, 8 "
     "by default)"),
    ({"DRIVESTAGE_RETRY_ATTEMPTS": "0.5"}, [],
     "Error: DRIVESTAGE_RETRY_ATTEMPTS='0.5' must be at least 1 (attempts per Drive request, "
     "8 by default)"),
    ({"DRIVESTAGE_API_ROOT": "", "DRIVESTAGE_TOKEN": ""}, ["--credentials", "{binary}"],
     "Error: credentials file {binary} " + CREDS),
    ({"DRIVESTAGE_API_ROOT": "", "DRIVESTAGE_TOKEN": "", "DRIVESTAGE_CREDENTIALS": "",
      "DRIVESTAGE_TOKEN_FILE": "{binary}"}, [],
     "Error: credentials file {binary} " + CREDS),
])
def test_a_bad_setting_is_one_line_and_no_request(setup, env, args, line):
    emulator, base, binary = setup
    base.update({k: v.format(binary=binary) for k, v in env.items()})
    done = cli_server().run(["ls", "drive:", *(a.format(binary=binary) for a in args)],
                            env=base, timeout=60, text=True)
    assert (done.returncode, done.stderr) == (2, line.format(binary=binary) + "\n")
    assert emulator.requests == []


@pytest.mark.parametrize("args, env, line", [
    (["ls", "drive:", "--credentials", "/dev/zero"], {"DRIVESTAGE_API_ROOT": ""},
     "Error: credentials file /dev/zero holds more than 1 MiB: no service-account key or "
     "token is that large; give the JSON key file"),
    (["ls", "drive:"], {"DRIVESTAGE_API_ROOT": "", "DRIVESTAGE_TOKEN_FILE": "/dev/zero"},
     "Error: credentials file /dev/zero holds more than 1 MiB: no service-account key or "
     "token is that large; give the JSON key file"),
    (["auth", "login", "--client-secrets", "/dev/zero"], {},
     "Error: client secrets file '/dev/zero' holds more than 1 MiB: no OAuth client secret "
     "is that large; give the JSON file of an OAuth client ID (Google Cloud console, type "
     "Desktop app)"),
])
def test_a_credentials_file_without_end_is_not_read_whole(local_state, args, env, line):
    """``--credentials /dev/zero`` (or a 5 GB checkpoint given by mistake) was read whole,
    to the end of memory: the process was killed. At most 1 MiB is read now (a key is 2 KB)."""
    base = dict(os.environ, DRIVESTAGE_TOKEN="", DRIVESTAGE_CREDENTIALS="", **env)
    done = cli_server().run(args, env=base, timeout=60, text=True,
                            limits={"RLIMIT_AS": (2 << 30, 2 << 30)})
    assert (done.returncode, done.stderr) == (2, line + "\n")
