"""attack52: ``drivestage auth login --token-file "$FILE"`` with the variable unset.

An empty ``--token-file`` was taken as not given: the login went on, and its token replaced
the default one (``~/.config/drivestage/token.json``, the account every later command uses),
where the user meant to keep a second account's token apart. Now a usage error, exit 2,
before the user is sent to log in."""
from __future__ import annotations

import json

from _cli import run

LINE = ("Error: --token-file is empty (an unset variable?); give the file to save the token "
        "in, or leave --token-file out for the default (~/.config/drivestage/token.json)")


def test_an_empty_token_file_is_refused_before_the_login(tmp_path, monkeypatch):
    """On main 8704ac72 the login URL was printed and the code asked for (then ``no code was
    pasted``, exit 1: a pasted one would have replaced the default token)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("DRIVESTAGE_TOKEN_FILE", raising=False)
    secrets = tmp_path / "client.json"
    secrets.write_text(json.dumps({"installed": {
        "client_id": "1.apps.googleusercontent.com", "client_secret": "s",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "redirect_uris": ["http://localhost"]}}))
    code, out, err = run("auth", "login", "--client-secrets", str(secrets), "--token-file", "")
    assert (code, out, err) == (2, "", LINE + "\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.json"]
