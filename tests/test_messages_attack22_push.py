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


SENT_NEW = "since it was listed; left as it is, sent as a new file"


@renders(SENT_NEW)
def test_a_log_renamed_since_the_listing_is_sent_as_a_new_file(emulator, local_state,
                                                               drive_env, tmp_path):
    import _cli

    fid = emulator.add_file("Models/logs/results.csv", b"epoch\n1\n")
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n2\n")
    emulator.faults.lag_listing(updated=5)
    emulator.store.update_meta(fid, {"title": "keep_run1.csv"})
    code, out, err = _cli.run("push", str(src), "drive:Models/logs")
    assert code == 0, err
    line = next(x for x in err.splitlines() if "since it was listed" in x)
    assert line.endswith("drive:Models/logs/results.csv was renamed 'keep_run1.csv' on Drive "
                         "since it was listed; left as it is, sent as a new file"), line
    shown(SENT_NEW, line)
