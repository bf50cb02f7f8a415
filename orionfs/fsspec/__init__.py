"""Orion for fsspec, pandas, Dask and the Python data stack: the ``orion://`` protocol.

``fsspec.open("orion://project/1/user/me/data.csv")``, ``pandas.read_csv("orion://...")``,
``dask.dataframe.read_csv("orion://.../*.csv")``: the ``orion`` protocol is registered through the
``fsspec.specs`` entry point, so installing orionfs is enough. URLs and the choice of profile:
:mod:`orionfs.fsspec.urls`; the filesystem: :class:`OrionFileSystem`; its files: :class:`OrionFile`;
errors: :mod:`orionfs.fsspec.errors`.
"""

from orionfs.fsspec.file import OrionFile
from orionfs.fsspec.filesystem import OrionFileSystem

__all__ = ["OrionFile", "OrionFileSystem"]
