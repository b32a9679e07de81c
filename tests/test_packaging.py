"""The packages import, and drivestage never needs torch."""
import subprocess
import sys


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
