"""The troubleshooting entry attackb51 added is made to happen by its test (its ``@renders``
declaration, registered on import). Imported as a module, so nothing runs twice here."""
from __future__ import annotations

import test_attackb51_torn_rng  # noqa: F401
