"""Moved to :mod:`drivestage.drive.store`; this name stays until the tests have moved."""
import sys

from drivestage.drive import store as _moved

sys.modules[__name__] = _moved
