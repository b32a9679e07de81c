"""The README's Colab install cell, run twice as the README says it may be (found by docs28).

The cell was ``git clone ...drivestage.git`` then ``%cd drivestage``: run a second time in
the same kernel (the README: "run again on a runtime that still has the folder"), the clone
finds the repository's own ``drivestage/`` package folder in the working directory, says it
exists, and ``%cd drivestage`` goes into the package: ``pip install -e`` then finds no
pyproject.toml, and cells 3 and 4 stage into the package and find no ``configs/voc.yaml``.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _install_cell() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    after = text.split("**Cell 1: install.**", 1)[1]
    block = re.search(r"^```python\n(.*?)^```", after, re.S | re.M).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def _run_cell(lines: list[str], content: Path, cwd: Path) -> Path:
    """The cell as IPython runs it, against a clone that is this repository's top level:
    a failing ``!`` command does not stop the cell; ``%cd`` to a missing folder stays put."""
    for line in lines:
        if line.startswith("!git clone"):
            args = [a for a in shlex.split(line[1:])[2:] if not a.startswith("-")]
            dest = Path(args[1]) if len(args) > 1 else Path(args[0].rsplit("/", 1)[1][:-4])
            dest = dest if dest.is_absolute() else cwd / dest
            dest = content / dest.relative_to("/content") if str(dest).startswith("/content") else dest
            if dest.exists() and any(dest.iterdir()):
                continue                                   # fatal: ... already exists
            for name in ("drivestage", "trainer"):
                (dest / name).mkdir(parents=True)
                (dest / name / "__init__.py").write_text("")
            (dest / "configs").mkdir()
            (dest / "pyproject.toml").write_text("[project]\nname = 'drivestage'\n")
            (dest / "configs" / "voc.yaml").write_text("data: {}\n")
        elif line.startswith("%cd"):
            target = Path(line.split(None, 1)[1])
            if target.is_absolute():
                target = content / target.relative_to("/content")
            else:
                target = cwd / target
            if target.is_dir():
                cwd = target
        elif line.startswith("!pip install"):
            assert "-e" in line
            assert (cwd / "pyproject.toml").is_file(), f"pip install -e in {cwd}: no pyproject.toml"
    return cwd


def test_the_install_cell_can_be_run_again_in_the_same_kernel(tmp_path):
    content = tmp_path / "content"          # Colab's /content, where a notebook starts
    content.mkdir()
    lines = _install_cell()
    assert any(line.startswith("!git clone") for line in lines), lines
    first = _run_cell(lines, content, content)
    second = _run_cell(lines, content, first)
    assert first == second
    assert (second / "configs" / "voc.yaml").is_file()   # cells 3 and 4 run from here


def test_the_extras_the_readme_installs_exist():
    import tomllib

    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
                 ["optional-dependencies"])
    named = set()
    for spec in re.findall(r'pip install[^`\n]*?"\.\[([^\]]+)\]"', (REPO / "README.md").read_text()):
        named |= {e.strip() for e in spec.split(",")}
    assert {"train", "export", "fast"} <= named
    assert named <= extras, named - extras
