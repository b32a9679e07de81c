"""The troubleshooting entry attack51 added is made to happen by its test (its ``@renders``
declaration, registered on import). Imported as a module, so nothing runs twice here."""
from __future__ import annotations

import test_attack51_sync_no_sidecar  # noqa: F401
