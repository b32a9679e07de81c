"""`drivestage auth login --token-file PATH`: the README said every later command finds the
token; they look in one place only (found by docs28). The login now says how to point them
at it, and doing what it says works."""
from __future__ import annotations

import json
import urllib.parse

import pytest
from drivestage.drive import auth
from drivestage.errors import NoCredentialsError
from test_auth import clean_env, token_server  # noqa: F401 (fixtures)


@pytest.mark.usefixtures("clean_env")
def test_a_token_saved_elsewhere_says_how_later_commands_find_it(tmp_path, token_server,  # noqa: F811
                                                                  monkeypatch):
    from drivestage.drive import login

    elsewhere = tmp_path / "keys" / "drive-token.json"
    secrets_file = tmp_path / "client_secret.json"
    secrets_file.write_text(json.dumps({"installed": {
        "client_id": "cid.apps.example", "client_secret": "csecret",
        "auth_uri": "https://accounts.example/o/oauth2/auth", "token_uri": token_server.uri,
        "redirect_uris": ["http://localhost"]}}))
    printed: list[str] = []

    def browser(prompt: str) -> str:
        url = next(line.strip() for text in printed for line in text.splitlines()
                   if line.strip().startswith("https://accounts.example"))
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
        token_server.codes["the-code"] = query["code_challenge"]
        return f"http://localhost/?state={query['state']}&code=the-code"

    login.login(str(secrets_file), token_file=str(elsewhere), ask=browser, say=printed.append)
    default = auth.default_token_path()
    assert printed[-1] == (f"Later commands look in {default}: set DRIVESTAGE_TOKEN_FILE={elsewhere} "
                           f"for them to find this one (or pass drivestage --credentials {elsewhere}).")
    with pytest.raises(NoCredentialsError):         # without it, they do not find it
        auth.load_credentials()
    monkeypatch.setenv("DRIVESTAGE_TOKEN_FILE", str(elsewhere))
    assert auth.load_credentials().source == f"credentials file {elsewhere}"

    # Saved where commands look, the login says nothing more.
    printed.clear()
    login.login(str(secrets_file), ask=browser, say=printed.append)
    assert printed[-1] == f"Saved the token to {elsewhere} (mode 0600)."
