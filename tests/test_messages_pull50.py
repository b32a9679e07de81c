"""The troubleshooting entries pull50 added are made to happen by its tests (their
``@renders`` declarations, registered on import). Imported as modules, so nothing runs
twice here."""
from __future__ import annotations

import test_pull50_gone  # noqa: F401
import test_pull50_hook_sidecar  # noqa: F401
import test_pull50_listing_time  # noqa: F401
import test_pull50_local_mixed  # noqa: F401
