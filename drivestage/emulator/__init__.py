"""A local Google Drive API v2 server for offline tests and demos.

``Emulator`` runs it in-process; ``drivestage emulator`` runs it from the shell.
"""
from drivestage.emulator.faults import Faults
from drivestage.emulator.server import Emulator, RequestRecord

__all__ = ["Emulator", "Faults", "RequestRecord"]
