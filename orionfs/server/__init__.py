"""The local Orion-compatible REST server (FastAPI + SQLite + a blob folder).

It shares no code with the client (``orionfs.client`` and friends), so that one bug cannot hide on
both sides of the wire. Layers: ``storage`` (SQLite and blobs, no HTTP) <- ``routes`` (one APIRouter
module per group, no SQL) <- ``app`` (the factory: routers, middleware, error handlers), with
``models`` (the bodies' schemas), ``transfer`` (streamed bodies), ``middleware`` (auth, body limits)
and ``testhooks`` (counters, latency, faults; only with ``--test-hooks``); ``cli`` runs it
(``orionfs serve`` / ``python -m orionfs.server``); ``sample`` seeds a fresh data dir.
"""
