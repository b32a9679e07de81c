"""Serve one zip from the Drive emulator of the source tree on ``sys.path`` (bench/pull_ab.py's
``--server emulator``): ``python bench/_emu_serve.py ZIP DATADIR PORTFILE``; writes
"PORT FILE_ID" to PORTFILE once it answers, and serves until SIGTERM.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from drivestage.emulator import Emulator


def main() -> None:
    zpath, data_dir, portfile = sys.argv[1:4]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Emulator(data_dir=data_dir) as emu:
        file_id = emu.add_file(f"bench/{os.path.basename(zpath)}", zpath)
        with open(portfile + ".tmp", "w") as fh:
            fh.write(f"{emu.port} {file_id}\n")
        os.replace(portfile + ".tmp", portfile)
        stop.wait()


if __name__ == "__main__":
    main()
