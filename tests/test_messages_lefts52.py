"""The troubleshooting entry lefts52 added is made to happen by its test (its ``@renders``
declaration, registered on import). Imported as a module, so nothing runs twice here."""
from __future__ import annotations

import test_lefts52_pull_dest_named_as_file  # noqa: F401
