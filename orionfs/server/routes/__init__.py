"""The routes of the local Orion server, one APIRouter module per group; no SQL here.

``accounts`` (token, versions, users, projects, balance), ``paths`` (ls, stat, paths), ``files``
(files and datasets), ``collections`` (shard collections and shards), ``sharing`` (tags and
sharing) and ``testhooks`` (only with ``--test-hooks``). ``deps`` holds what they share, ``bodies``
the upload and download bodies.
"""
