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
