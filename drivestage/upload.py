"""Moved to :mod:`drivestage.drive.upload`; this name stays until the tests have moved."""
import sys

from drivestage.drive import upload as _moved

sys.modules[__name__] = _moved
