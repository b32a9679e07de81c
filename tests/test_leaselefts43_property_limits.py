"""leaselefts43: Drive's 403s for a custom property's limits have their own typed errors.

403 ``propertyCountLimitExceeded`` (an item at 30 public properties, 30 private ones of an
app, 100 in all) and ``propertyLengthLimitExceeded`` (key and value over 124 bytes of UTF-8)
were typed as :class:`PermissionDeniedError`: their line said "permission denied ... Check
that this account can access the file (sharing settings ...)", which no sharing setting
lifts (a lease claim, a mirror's claim, a run mark or a first-seen mark refused so). The
emulator answers as Drive does (reason and, for the length, Drive's own message, as
clients report them). The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from drivestage.drive import answers
from drivestage.errors import PermissionDeniedError, PropertyCountLimitError, \
    PropertyLengthLimitError, PropertyLimitError
from drivestage.store import RemoteEntry


def test_a_property_over_drives_limits_says_which_limit_and_what_to_do(
        drive_env, emulator, store, fast_retries):
    folder = RemoteEntry(emulator.add_folder("runs/exp"), "exp", True)
    for n in range(30):   # (other tools' public properties: Drive's limit)
        store.set_public_property(folder, f"tool-{n}", "x")
    with pytest.raises(PropertyCountLimitError) as count:
        store.set_public_property(folder, "trainer-lease-0123456789abcdef", "1|2|3")
    where = f"drive:id:{folder.id}"   # (as the store names a folder it did not walk to)
    assert str(count.value) == (
        f"write the property trainer-lease-0123456789abcdef of {where}: Drive refused: "
        "the item holds as many custom properties as Drive allows (30 public ones, 30 private "
        "ones per app, 100 in all), not a matter of access (HTTP 403 "
        "propertyCountLimitExceeded: A file may have at most 30 private properties per "
        "app, 30 public ones and 100 in all.)."
        " Remove properties other tools set on it (Drive API properties.delete), or use "
        "another folder.")
    failure = answers.failure_of(count.value)   # (what a caller that handles it reads)
    assert failure is not None and failure.status == 403
    assert failure.reason == "propertyCountLimitExceeded"

    store.set_public_property(folder, "tool-0", None)   # (room for one)
    with pytest.raises(PropertyLengthLimitError) as length:
        store.set_public_property(folder, "k" * 24, "v" * 101)   # (125 bytes)
    assert str(length.value) == (
        f"write the property kkkkkkkkkkkkkkkkkkkkkkkk of {where}: Drive refused a custom "
        "property longer than it allows (124 bytes of UTF-8, key and value together), not a "
        "matter of access (HTTP 403 propertyLengthLimitExceeded: Properties and app "
        "properties are limited to 124 bytes in UTF-8 encoding, counting both the key and "
        "the value.). "
        "drivestage cuts its own properties to fit: report this line as a bug.")
    for exc in (count.value, length.value):
        assert isinstance(exc, PropertyLimitError) and not isinstance(exc, PermissionDeniedError)
        assert exc.exit_code == 1
    store.set_public_property(folder, "k" * 24, "v" * 100)   # (124 bytes: taken)
    assert store.public_properties(folder)["k" * 24] == "v" * 100
