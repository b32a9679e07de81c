"""``trashed``, ``starred`` and ``hidden`` take ``=`` or ``!=`` in a ``q``: the v2 search-terms
reference (developers.google.com/drive/api/v2/ref-search-terms, "File query terms") lists
those operators and no other use. The emulator took them bare (``trashed and 'P' in
parents``), so a client sending that passed here and got 400 "Invalid Value" from Drive.
``sharedWithMe`` stays accepted bare, as v2's examples wrote it.
"""
from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from drivestage.emulator.query import QueryError, compile_query
from tests._drive_clients import drive_service


@pytest.mark.parametrize("q", ["trashed", "starred and title = 'x'", "(hidden)",
                               "title = 'x' or trashed"])
def test_a_bare_trashed_starred_or_hidden_is_refused(q):
    with pytest.raises(QueryError):
        compile_query(q)


def test_the_forms_drive_takes(emulator):
    for q in ("trashed = false", "trashed != true", "sharedWithMe", "sharedWithMe and trashed=false",
              "(sharedWithMe)", "sharedWithMe = true"):
        compile_query(q)
    service = drive_service(emulator.url)
    with pytest.raises(HttpError) as err:
        service.files().list(q="trashed").execute()
    assert err.value.resp.status == 400
