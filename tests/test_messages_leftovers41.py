"""Messages of leftovers41 that docs/troubleshooting.md quotes, made to happen."""
from __future__ import annotations

import json

from click.testing import CliRunner

from _messages import error_line, renders, shown

DANGLING = "is a link to …, which is not there; give the file to write, or point the link at one"


@renders(DANGLING)
def test_a_link_that_leads_nowhere_as_the_file_to_write(tmp_path, monkeypatch):
    """``auth login --token-file`` (a link is written through; ``export-onnx --out`` says the
    same: tests/test_leftovers41_links.py)."""
    from drivestage.cli import cli as drivestage_cli

    for name in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN", "DRIVESTAGE_CREDENTIALS",
                 "DRIVESTAGE_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    secrets = tmp_path / "client_secret.json"
    secrets.write_text(json.dumps({"installed": {
        "client_id": "c", "client_secret": "s", "auth_uri": "https://accounts.example/auth",
        "token_uri": "https://oauth2.example/token", "redirect_uris": ["http://localhost"]}}))
    token = tmp_path / "token.json"
    token.symlink_to(tmp_path / "gone" / "token.json")
    r = CliRunner().invoke(drivestage_cli, ["auth", "login", "--client-secrets", str(secrets),
                                            "--token-file", str(token)])
    assert r.exit_code == 2, r.output
    shown(DANGLING, error_line(r.stderr))
