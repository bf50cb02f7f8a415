"""orionfs: mount Orion folders as a local directory through FUSE.

Layers, one way only: ``orionfs.fuse`` -> ``orionfs.fs.cache`` -> ``orionfs.client.session`` -> HTTP
(``orionfs.client.wire`` holds every endpoint path and JSON field name). ``orionfs.server`` is a separate,
Orion-compatible REST server that shares no logic with the client.
"""

__version__ = "0.1.0"
