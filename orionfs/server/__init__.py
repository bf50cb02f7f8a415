"""The local Orion-compatible REST server (FastAPI + SQLite + a blob folder).

It shares no code with the client (``orionfs.session`` and friends), so that one bug cannot hide on
both sides of the wire. Layers: ``storage`` (SQLite and blobs, no HTTP) <- ``app`` (routes, no SQL)
with ``transfer`` (streamed bodies) and ``middleware`` (auth, body limits, test hooks); ``cli`` runs
it (``orionfs serve`` / ``python -m orionfs.server``); ``sample`` seeds a fresh data dir.
"""
