"""The troubleshooting entry for sweep51's warning is made to happen by its test (its
``@renders`` declaration, registered on import). Imported as a module, so nothing runs twice
here."""
from __future__ import annotations

import test_sweep51_resume  # noqa: F401
