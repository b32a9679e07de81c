"""attack22push's messages (docs/troubleshooting.md), each made to happen through the CLI."""
from __future__ import annotations

from click.testing import CliRunner

from _messages import error_line, renders, shown
from drivestage.cli import cli

GRACE = ("Invalid value for '--grace': … is not a number of seconds > 0 and at most 2592000 "
         "(30 days)")


@renders(GRACE)
def test_mirror_grace_nan_is_a_usage_error(tmp_path):
    r = CliRunner().invoke(cli, ["mirror", str(tmp_path), "drive:Models/logs", "--every", "60",
                                 "--grace", "nan"])
    assert r.exit_code == 2, r.output
    line = error_line(r.stderr)
    assert line == ("Error: Invalid value for '--grace': nan is not a number of seconds > 0 "
                    "and at most 2592000 (30 days)")
    shown(GRACE, line)
