"""The troubleshooting headings of a folder pull that met files Drive will not serve
(stampcache36): the rest is pulled, the archives after a failed one downloaded, not
extracted, and every failed file named with its --exclude."""
from __future__ import annotations

import _cli
from _messages import error_line, renders, shown
from test_chunkdet35_order import BIG, _zip

MANY = "… files were not fetched, the rest were: …"
HELD = "… after … in the pull's order … downloaded and verified, not extracted"


@renders(MANY, HELD)
def test_two_files_drive_will_not_serve(emulator, local_state, drive_env, fast_retries,
                                        tmp_path):
    emulator.add_file("F/a.zip", _zip({"ds/x": b"a"}), abusive=True)
    popular = emulator.add_file("F/b.bin", b"b" * 10)
    emulator.limit_downloads(popular, 0)
    emulator.add_file("F/c.zip", _zip({"ds/x": b"c", "ds/big": BIG}))
    dest = tmp_path / "d"

    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q")

    assert code == 1, err
    line = error_line(err)
    shown(MANY, line)
    assert line.startswith("Error: 2 files were not fetched, the rest were: "), line
    assert line.endswith(". Or pull the rest of the folder without them: --exclude 'a.zip' "
                         "--exclude 'b.bin'"), line
    held = [x for x in err.splitlines() if "in the pull's order were" in x or
            "in the pull's order was" in x]
    assert held == ["WARNING drivestage.stage_failed: 1 archive after drive:F/a.zip in the "
                    "pull's order was downloaded and verified, not extracted (archives merge "
                    "in that order): the next pull extracts it after it, without downloading "
                    "it again: drive:F/c.zip"], err
    shown(HELD, held[0])
