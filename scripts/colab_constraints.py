"""Print pip constraints that pin every package to the version Colab ships
(tests/data/colab-2026-08-pip-freeze.txt), for `make test-colab`: the suite on Colab's own
Python, torch, protobuf and Google client libraries instead of the newest releases.

What cannot come from PyPI as Colab has it is left out: local version labels (``+cu128``:
PyPI's build of the same version instead) and the CUDA runtime packages (``nvidia-*``,
``cuda-*``), which PyPI's torch of that version names at its own versions. Lines that are not
``name==version`` (a package installed from a URL or a path) are skipped.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

FREEZE = Path(__file__).resolve().parent.parent / "tests" / "data" / "colab-2026-08-pip-freeze.txt"
#: Packages whose Colab versions belong to Colab's CUDA build, not to PyPI's torch.
CUDA = re.compile(r"^(nvidia-|cuda-)", re.IGNORECASE)


def constraints(freeze: str) -> list[str]:
    """``name==version`` lines of ``freeze`` that pip can satisfy from PyPI."""
    out = []
    for line in freeze.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "==" not in line or " @ " in line:
            continue
        name, version = (part.strip() for part in line.split("==", 1))
        if CUDA.match(name):
            continue
        out.append(f"{name}=={version.split('+', 1)[0]}")
    return out


def main() -> None:
    sys.stdout.write("".join(f"{c}\n" for c in constraints(FREEZE.read_text())))


if __name__ == "__main__":
    main()
