"""``orionfs.session``: the orionclient-compatible import path (``orionclient.session``).

The implementation lives in :mod:`orionfs.client.session`; this module names its public API.
"""

from orionfs.client.config import get_profile_config
from orionfs.client.session import APISession, OrionSession, get_session, in_orion

__all__ = ["APISession", "OrionSession", "get_profile_config", "get_session", "in_orion"]
