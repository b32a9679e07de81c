"""The troubleshooting entries attackb50 added are made to happen by its tests (their
``@renders`` declarations, registered on import). Imported as modules, so nothing runs
twice here."""
from __future__ import annotations

import test_attackb50_local_gone  # noqa: F401
