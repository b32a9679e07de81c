"""Moved to :mod:`drivestage.drive.retry`; this name stays until the tests have moved."""
import sys

from drivestage.drive import retry as _moved

sys.modules[__name__] = _moved
