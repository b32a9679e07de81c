"""Compatibility for code written against drivestage 0.1.0: the md5 cache now lives in
:mod:`drivestage.state` (the trainer's ``drive.py`` imports it from here)."""
from drivestage.state import Md5Cache

__all__ = ["Md5Cache"]
