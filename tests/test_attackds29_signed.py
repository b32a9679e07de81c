"""A signed address that answers other bytes (attackds29): fidelity28 reuses the address
Drive redirected a download to for the file's next reads (5 min). When the bytes it served
did not match Drive's checksum, the download started again from zero through that same
address (a cache or a signed host serving another file's bytes), failed again, and the pull
gave up with "twice", where asking Drive again (a fresh address, or none) got the right
bytes."""
from __future__ import annotations

import os

import _cli
from _envs import env  # noqa: F401  (a fixture)
from _proxy import Proxy, Reply

MiB = 1 << 20


def _other_bytes(status: int, headers: dict, body: bytes) -> Reply:
    """The answer with every byte changed (the same length): another file's bytes."""
    return Reply(status, headers, [bytes(b ^ 0x5A for b in body)])


def test_a_checksum_mismatch_asks_drive_again_not_the_link_that_served_it(emulator, env,
                                                                          tmp_path):
    data = os.urandom(MiB + 4321)
    emulator.add_file("VOC/set.bin", data)
    with Proxy(emulator.url) as signed_host:
        signed_host.on("GET", r"^/download/", _other_bytes)
        # The first answer of the API redirects to that host; Drive's next ones serve the
        # bytes themselves (a fresh address would do as well).
        emulator.faults.redirect_media(307, times=1, origin=signed_host.url)
        code, _, err = _cli.run("pull", "drive:VOC/set.bin", str(tmp_path / "d"),
                                "--chunk-size", "256KiB", "--jobs", "1")

    assert code == 0, err
    assert (tmp_path / "d/set.bin").read_bytes() == data
    assert "checksum mismatch" in err and "starting again from zero" in err, err
