"""The emulator's Drive v2 custom file properties (``properties[]``), through the real
googleapiclient discovery client: set at insert and by patch/update (merged by key and
visibility), shown in get and list, PRIVATE ones only to the app that set them, the
``properties.*`` methods, and Drive's limits answered as Drive does (403 and its reason)."""
from __future__ import annotations

import json

import pytest
from googleapiclient.errors import HttpError

from _drive_clients import drive_service

MARK = {"key": "drivestage-run", "value": "1", "visibility": "PRIVATE"}


def shown(res: dict) -> list[tuple[str, str, str]]:
    return sorted((p["key"], p["value"], p["visibility"]) for p in res.get("properties") or ())


def reason(err: HttpError) -> tuple[int, str, str]:
    e = json.loads(err.content)["error"]["errors"][0]
    return err.resp.status, e["reason"], e["message"]


def test_insert_patch_and_update_merge_by_key_and_visibility(emulator):
    service = drive_service(emulator.url)
    made = service.files().insert(body={
        "title": "exp1", "mimeType": "application/vnd.google-apps.folder",
        "properties": [MARK, {"key": "note", "value": "a"}]}).execute()
    # visibility left out: PRIVATE, as v2 documents
    assert shown(made) == [("drivestage-run", "1", "PRIVATE"), ("note", "a", "PRIVATE")]
    patched = service.files().patch(fileId=made["id"], body={"properties": [
        {"key": "note", "value": "b", "visibility": "PRIVATE"},
        {"key": "note", "value": "pub", "visibility": "PUBLIC"}]}).execute()
    assert shown(patched) == [("drivestage-run", "1", "PRIVATE"), ("note", "b", "PRIVATE"),
                              ("note", "pub", "PUBLIC")]
    updated = service.files().update(fileId=made["id"], body={"title": "exp1", "properties": [
        {"key": "note", "value": None, "visibility": "PUBLIC"}]}).execute()
    assert shown(updated) == [("drivestage-run", "1", "PRIVATE"), ("note", "b", "PRIVATE")]
    # a patch without properties leaves them; get and list show them
    service.files().patch(fileId=made["id"], body={"title": "exp1b"}).execute()
    assert shown(service.files().get(fileId=made["id"]).execute()) == shown(updated)
    listed = service.files().list(q="title = 'exp1b'").execute()["items"]
    assert [shown(it) for it in listed] == [shown(updated)]
    got = service.files().get(fileId=made["id"], fields="properties(key,value)").execute()
    assert sorted(p["key"] for p in got["properties"]) == ["drivestage-run", "note"]
    plain = service.files().insert(body={"title": "plain"}).execute()
    assert "properties" not in plain


def test_private_properties_are_the_setting_apps_own(emulator):
    folder = emulator.add_folder("runs/exp1")
    emulator.set_token_app("other-token", "another-app")
    ours, theirs = drive_service(emulator.url), drive_service(emulator.url, token="other-token")
    ours.files().patch(fileId=folder, body={"properties": [MARK]}).execute()
    theirs.files().patch(fileId=folder, body={"properties": [
        {"key": "drivestage-run", "value": "forged", "visibility": "PRIVATE"},
        {"key": "drivestage-run", "value": "public", "visibility": "PUBLIC"}]}).execute()
    assert shown(ours.files().get(fileId=folder).execute()) == [
        ("drivestage-run", "1", "PRIVATE"), ("drivestage-run", "public", "PUBLIC")]
    assert shown(theirs.files().get(fileId=folder).execute()) == [
        ("drivestage-run", "forged", "PRIVATE"), ("drivestage-run", "public", "PUBLIC")]
    # properties.* see the same; another app's delete of "its" PRIVATE key leaves ours
    items = ours.properties().list(fileId=folder).execute()["items"]
    assert sorted((p["value"], p["visibility"]) for p in items) == [("1", "PRIVATE"),
                                                                    ("public", "PUBLIC")]
    theirs.properties().delete(fileId=folder, propertyKey="drivestage-run",
                               visibility="PRIVATE").execute()
    got = ours.properties().get(fileId=folder, propertyKey="drivestage-run",
                                visibility="PRIVATE").execute()
    assert (got["kind"], got["value"]) == ("drive#property", "1")
    ours.properties().delete(fileId=folder, propertyKey="drivestage-run",
                             visibility="PRIVATE").execute()
    with pytest.raises(HttpError) as err:
        ours.properties().delete(fileId=folder, propertyKey="drivestage-run",
                                 visibility="PRIVATE").execute()
    assert reason(err.value) == (404, "notFound", "Property not found: key = drivestage-run "
                                                  "and visibility = PRIVATE")
    assert [(p["value"], p["app"]) for p in emulator.properties_of(folder)] == [("public", None)]
    assert emulator.api_calls("properties.delete") == 3


def test_limits_answer_as_drive_does_and_change_nothing(emulator):
    service = drive_service(emulator.url)
    folder = emulator.add_folder("f")
    fits = {"key": "k" * 24, "value": "v" * 100}            # 124 bytes: the most allowed
    service.files().patch(fileId=folder, body={"properties": [fits]}).execute()
    for too_long in ({"key": "k" * 24, "value": "v" * 101},
                     {"key": "k", "value": "é" * 62}):        # 1 + 124 bytes of UTF-8
        with pytest.raises(HttpError) as err:
            service.files().patch(fileId=folder, body={"properties": [too_long]}).execute()
        assert reason(err.value) == (403, "propertyLengthLimitExceeded",
                                     "Properties and app properties are limited to 124 bytes "
                                     "in UTF-8 encoding, counting both the key and the value.")
    thirty = [{"key": f"p{i}", "value": "x"} for i in range(29)]   # with ``fits``: 30
    service.files().patch(fileId=folder, body={"properties": thirty}).execute()
    with pytest.raises(HttpError) as err:
        service.files().patch(fileId=folder, body={"properties": [
            {"key": "one-more", "value": "x"}]}).execute()
    assert reason(err.value)[:2] == (403, "propertyCountLimitExceeded")
    # PUBLIC ones count apart (30 of them fit beside 30 PRIVATE)
    service.files().patch(fileId=folder, body={"properties": [
        {"key": f"q{i}", "value": "x", "visibility": "PUBLIC"} for i in range(30)]}).execute()
    assert len(emulator.properties_of(folder)) == 60
    # a refused insert makes no file
    with pytest.raises(HttpError) as err:
        service.files().insert(body={"title": "never", "properties": [
            {"key": "k", "value": "v" * 200}]}).execute()
    assert reason(err.value)[:2] == (403, "propertyLengthLimitExceeded")
    assert emulator.find("never") is None
    with pytest.raises(HttpError) as err:
        service.files().patch(fileId=folder, body={"properties": [{"value": "no key"}]}).execute()
    assert reason(err.value)[:2] == (400, "required")
