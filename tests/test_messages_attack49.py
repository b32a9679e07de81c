"""The troubleshooting entries attack49 added are made to happen by its tests (their
``@renders`` declarations, registered on import): tests/test_attack49_mixed_pull.py and
tests/test_attack49_resume_intact.py. Imported as modules, so nothing runs twice here."""
from __future__ import annotations

import test_attack49_mixed_pull  # noqa: F401
import test_attack49_resume_intact  # noqa: F401
