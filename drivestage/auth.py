"""Moved to :mod:`drivestage.drive.auth`; this name stays until the tests have moved."""
import sys

from drivestage.drive import auth as _moved

sys.modules[__name__] = _moved
