"""Build the unmodified third-party Drive clients (googleapiclient, PyDrive2) against an emulator.

This is test plumbing, not product code: drivestage.drive holds the real thing.
"""
from __future__ import annotations

import json

import httplib2
from googleapiclient.discovery import build_from_document
from googleapiclient.discovery_cache import get_static_doc
from oauth2client.client import AccessTokenCredentials


def _http(timeout: float = 30) -> httplib2.Http:
    http = httplib2.Http(timeout=timeout)
    # Drive answers 308 to resumable chunks; it is not a redirect.
    http.redirect_codes = http.redirect_codes - {308}
    return http


def authorized_http(token: str = "test-token") -> httplib2.Http:
    """An httplib2 client that sends ``Authorization: Bearer <token>``."""
    return AccessTokenCredentials(token, "drivestage-tests").authorize(_http())


def drive_service(url: str, token: str = "test-token", http: httplib2.Http | None = None):
    """A googleapiclient Drive v2 service whose rootUrl is the emulator."""
    doc = json.loads(get_static_doc("drive", "v2"))
    doc["rootUrl"] = url
    return build_from_document(doc, http=http or authorized_http(token))


def pydrive(url: str, token: str = "test-token"):
    """A PyDrive2 ``GoogleDrive`` talking to the emulator with a plain access token."""
    from pydrive2.auth import GoogleAuth
    from pydrive2.drive import GoogleDrive

    gauth = GoogleAuth()
    gauth.credentials = AccessTokenCredentials(token, "drivestage-tests")
    gauth.http = gauth.credentials.authorize(gauth._build_http())
    gauth.service = drive_service(url, http=gauth.http)
    return GoogleDrive(gauth)
