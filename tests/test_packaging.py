"""The packages import, drivestage never needs torch, and the extras install what they say."""
import subprocess
import sys
from pathlib import Path

import pytest


def test_drivestage_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import drivestage, drivestage.cli, drivestage.errors, drivestage.store\n"
        "print(drivestage.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.1.0"


def test_cli_help_runs():
    from click.testing import CliRunner

    from drivestage.cli import cli

    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    assert "Stage datasets from Google Drive" in res.output


def test_trainer_help_works_without_torch():
    # `pip install .` (no [train] extra) must give a working `trainer --help`.
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
        "from click.testing import CliRunner\n"
        "from trainer.cli import cli\n"
        "res = CliRunner().invoke(cli, ['--help'])\n"
        "print(res.exit_code); print(res.output)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "0"
    for command in ("train", "eval", "predict", "export-onnx", "prepare-voc", "synth-data"):
        assert any(line.strip().startswith(command + " ") for line in lines), out.stdout


def test_version_is_0_1_0_everywhere():
    import tomllib
    from pathlib import Path

    import drivestage
    import trainer

    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["version"] == drivestage.__version__ == trainer.__version__ == "0.1.0"
    assert "## 0.1.0" in (root / "CHANGELOG.md").read_text()


# --------------------------------------------------------------------------- installing on Colab

ROOT = Path(__file__).resolve().parent.parent
COLAB_FREEZE = ROOT / "tests" / "data" / "colab-2026-08-pip-freeze.txt"  # Colab's GPU runtime, Python 3.13


def _colab_versions() -> dict:
    from packaging.utils import canonicalize_name

    versions = {}
    for line in COLAB_FREEZE.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            versions[canonicalize_name(name)] = version.strip()
    return versions


def _project() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_train_install_replaces_nothing_colab_ships():
    """``pip install -e ".[train]"`` on Colab: every requirement is already there, at a version
    that satisfies it, so pip installs drivestage/trainer alone and leaves Colab's packages be."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    colab = _colab_versions()
    assert len(colab) > 600 and colab["torch"].startswith("2.") and colab["protobuf"] == "5.29.6"
    project = _project()
    unmet = []
    for text in project["dependencies"] + project["optional-dependencies"]["train"]:
        req = Requirement(text)
        have = colab.get(canonicalize_name(req.name))
        if have is None or not req.specifier.contains(Version(have), prereleases=True):
            unmet.append(f"{text} (Colab has {have or 'nothing'})")
    assert not unmet, "pip would install or replace on Colab: " + ", ".join(unmet)


def test_onnx_export_is_its_own_extra():
    from packaging.requirements import Requirement

    extras = _project()["optional-dependencies"]
    names = {name: {Requirement(r).name for r in reqs} for name, reqs in extras.items()}
    assert {"onnx", "onnxruntime"} <= names["export"]
    assert not {"onnx", "onnxruntime"} & (names["train"] | set(_project()["dependencies"]))
    # make test installs the export extra, so that the ONNX tests run
    assert "'.[train,dev,export]'" in (ROOT / "Makefile").read_text()


def test_the_pydrive2_floor_stays_at_what_colab_ships():
    """Newer PyDrive2 releases pin cryptography<44: a floor above Colab's would downgrade it."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    (pydrive2,) = [Requirement(r) for r in _project()["dependencies"] if r.lower().startswith("pydrive2")]
    assert pydrive2.specifier.contains(Version(_colab_versions()["pydrive2"]))


@pytest.mark.slow
def test_export_onnx_without_the_extra_says_what_to_install(tmp_path):
    """The onnx import fails for real in a child process (the module is blocked there)."""
    import torch

    from trainer.model import YoloV4Tiny

    weights = tmp_path / "w.pth"
    torch.save(YoloV4Tiny(num_classes=2).state_dict(), weights)
    out = tmp_path / "m.onnx"
    code = (
        "import sys; sys.modules['onnx'] = None  # as if the [export] extra were not installed\n"
        "from trainer.cli import main\n"
        f"sys.argv = ['trainer', 'export-onnx', '--weights', {str(weights)!r}, '--out', {str(out)!r}]\n"
        "main()"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    assert res.stderr == ('Error: ONNX export needs the onnx package, which [train] leaves out; install it with '
                          'pip install -e ".[export]" (or pip install onnx)\n')
    assert list(tmp_path.iterdir()) == [weights]


def test_colab_constraints_pin_what_colab_ships_as_pypi_has_it():
    """`make test-colab` installs under these: Colab's versions, PyPI's builds of them (no
    ``+cu128``), no CUDA runtime packages (PyPI's torch names its own), nothing from a URL."""
    import runpy

    constraints = runpy.run_path(str(ROOT / "scripts" / "colab_constraints.py"))["constraints"]
    pins = dict(line.split("==") for line in constraints(COLAB_FREEZE.read_text()))
    colab = _colab_versions()
    assert pins["torch"] == colab["torch"].split("+")[0] == "2.11.0"
    assert pins["torchvision"] == "0.26.0" and pins["protobuf"] == "5.29.6"
    assert pins["PyDrive2"] == colab["pydrive2"]
    assert not [n for n in pins if n.lower().startswith(("nvidia-", "cuda-"))]
    assert not [v for v in pins.values() if "+" in v or " " in v]
    assert constraints("a @ file:///x\n# c\nnvidia-nccl-cu12==2.1\nb==1.0+cu1\n") == ["b==1.0"]
