"""The token file ``drivestage auth login`` saves, and where: google-auth's own JSON for an
authorized-user credential, written atomically with mode 0600."""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, Mapping, Optional

from drivestage.errors import UsageError
from drivestage.localfs import atomic_write

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"


def default_token_path(env: Mapping[str, str] = os.environ) -> str:
    """Where ``drivestage auth login`` saves its token."""
    if env.get("DRIVESTAGE_TOKEN_FILE"):
        return os.path.expanduser(env["DRIVESTAGE_TOKEN_FILE"])
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "drivestage", "token.json")


def token_info(creds: Any) -> dict[str, Any]:
    """The JSON we save for an authorized-user credential (google-auth's own format)."""
    expiry = getattr(creds, "expiry", None)
    return {
        "type": "authorized_user",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "refresh_token": creds.refresh_token,
        "token": creds.token,
        "token_uri": creds.token_uri,
        "scopes": list(creds.scopes or [DRIVE_SCOPE]),
        "expiry": expiry.replace(microsecond=0).isoformat() + "Z" if expiry else None,
    }


def save_token(path: str, creds: Any) -> None:
    """Write the token atomically with mode 0600 (its folder 0700 when we create it); through
    a link, as ``cp`` writes (:func:`drivestage.special_files.through_links`): the link to a
    dotfiles folder stays, and the file it leads to gets the token."""
    from drivestage.special_files import through_links

    path = through_links(os.path.expanduser(path), "the token file")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    atomic_write(path, (json.dumps(token_info(creds), indent=1) + "\n").encode(), mode=0o600)


def saving(path: str) -> Optional[Callable[[Any], None]]:
    """What keeps a refreshed token in ``path``, the token file it was read from; None where
    that is no file but a pipe, FIFO or device (``--credentials <(vault read …)``, given so
    that the token never sits on disk): the refresh replaced the FIFO with a regular file
    holding the token, refresh token and client secret (attackstream40). A token file that
    cannot be written (a read-only folder) is said, and the command goes on with the new
    token: the command failed after its refresh had worked."""
    from drivestage.special_files import special_kind

    if special_kind(os.path.expanduser(path)) is not None:
        return None

    def save(creds: Any) -> None:
        try:
            save_token(path, creds)
        except (OSError, UsageError) as exc:   # (UsageError: its link was taken away since)
            # (Said as the refresh's other lines are: drivestage.drive.auth.)
            logging.getLogger("drivestage.drive.auth").warning(
                "could not save the refreshed token to %s (%s); this command goes on with "
                "it, and the next one refreshes it again", path,
                getattr(exc, "strerror", None) or exc)

    return save
