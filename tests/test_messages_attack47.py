"""docs/troubleshooting.md, "Archives": the refusal of an archive whose member names take
more memory than the member cap allows, made to happen (see tests/_messages.py; named
test_messages_* as test_docs collects @renders from those only)."""
from __future__ import annotations

import os

from click.testing import CliRunner

from _archives import a_tgz
from _messages import renders, shown
from drivestage.cli import cli


@renders("of memory drivestage lists one archive in")
def test_member_names_longer_than_the_cap_allows(env, drive_env, fast_retries, emulator,
                                                 tmp_path, monkeypatch):
    from drivestage.extract import members

    monkeypatch.setattr(members, "MAX_MEMBERS", 2000)   # (2.3 MiB with the allowance for names)
    long = ("d" * 200 + "/") * 19                      # (a legal path of 4,000 bytes)
    emulator.add_file("set.tar.gz", a_tgz({f"{long}{i:03d}.txt": b"x" for i in range(800)}))
    dest = tmp_path / "data"
    result = CliRunner().invoke(cli, ["pull", "drive:set.tar.gz", str(dest), "-x", "-q"])
    line = result.stderr.strip().splitlines()[-1]
    assert result.exit_code == 1 and line.startswith("Error: "), result.stderr
    shown("of memory drivestage lists one archive in", line)
    assert "the names of its first " in line and "are so long" in line
    assert sorted(os.listdir(dest)) == [".drivestage", "set.tar.gz"]
