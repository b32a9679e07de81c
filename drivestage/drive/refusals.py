"""403 answers that are no matter of access (split from :mod:`drivestage.drive.answers` at its
line cap; that module is still the one place that reads Drive's answers and calls this)."""
from __future__ import annotations

from typing import Optional

from drivestage import errors


def not_a_permission(reason: str, status: int, what: str, label: str,
                     detail: str) -> Optional[errors.DriveStageError]:
    """A 403 no sharing setting lifts (it was "permission denied... check the sharing
    settings"): a project without the Drive API, a request taken for one without credentials,
    an item with no bytes, the sharing limit, a custom property's limits. None: access."""
    if reason == "accessNotConfigured" and "quota project" in detail:
        # The same reason for Application Default Credentials of a user (gcloud's) that name
        # no project to bill the calls to (agno pull request 4658).
        return errors.ApiDisabledError(
            f"{what}: Drive needs a Google Cloud project to count these credentials' requests "
            f"against, and they name none ({label}: {detail}). Run `gcloud auth "
            "application-default set-quota-project PROJECT` with a project that has the Google "
            "Drive API enabled, or log in with `drivestage auth login --client-secrets FILE`.")
    if reason == "accessNotConfigured":
        # Google's answer to a Cloud project that has not enabled the Drive API (a new
        # service account's, an OAuth client's): its message names the page that enables it.
        return errors.ApiDisabledError(
            f"{what}: the Google Cloud project of these credentials has not enabled the Google "
            f"Drive API ({label}: {detail}). Enable it in that project (Cloud console: APIs & "
            "Services, Library, Google Drive API), wait a few minutes and run the command "
            "again; or use credentials of a project that has it enabled.")
    if reason.endswith("Unreg"):
        # dailyLimitExceededUnreg...: Google's limits for requests that carry no credentials.
        return errors.AuthError(
            f"{what}: Drive took the request for one without credentials ({label}: {detail}); "
            "the access token did not reach Drive (a proxy that drops the Authorization "
            "header?) or was empty. Run `drivestage auth login`, pass --credentials FILE, or "
            "set DRIVESTAGE_CREDENTIALS.")
    if reason == "fileNotDownloadable":
        return errors.RemoteError(
            f"{what}: Drive says this item has no binary content to download ({label}: "
            f"{detail}), though it was listed as a file with bytes: a Google Docs, Sheets or "
            "Slides file can only be exported. Export it to a file on Drive first, or leave "
            "it out (--exclude).", status=status, reason=reason)
    if (count := reason == "propertyCountLimitExceeded") or reason == "propertyLengthLimitExceeded":
        head = ("Drive refused: the item holds as many custom properties as Drive allows (30 "
                "public ones, 30 private ones per app, 100 in all)" if count else "Drive "
                "refused a custom property longer than it allows (124 bytes of UTF-8, key and "
                "value together)")
        return (errors.PropertyCountLimitError if count else errors.PropertyLengthLimitError)(
            f"{what}: {head}, not a matter of access ({label}: {detail}). " + (
                "Remove properties other tools set on it (Drive API properties.delete), or use "
                "another folder." if count else "drivestage cuts its own properties to fit: "
                "report this line as a bug."), status=status, reason=reason)
    if reason == "sharingRateLimitExceeded":
        # drivestage shares nothing: the account's sharing elsewhere (other apps, the
        # browser, its notification emails) reached Drive's limit on it.
        return errors.SharingLimitError(
            f"{what}: Drive refused: this account reached Drive's limit on sharing ({label}: "
            f"{detail}), not a matter of access. Wait and run the command again later.",
            status=status, reason=reason)
    return None
