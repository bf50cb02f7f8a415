"""Orion paths: listing folders, stat, creating, removing and moving items by path."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orionfs.client import wire
from orionfs.client.core import ResourceRef, SessionCore, check_int, check_path, entry_list
from orionfs.client.types import resource_class
from orionfs.exceptions import ValidationError

__all__ = ["PathsMixin"]


class PathsMixin(SessionCore):
    """The path methods of OrionSession: ``ls_path``, ``stat_path``, ``create_paths``, ..."""

    def assign_paths(self, *assignments: Mapping[str, Any]) -> None:
        """Move items (see :meth:`move_items`, which also returns the moved entries)."""
        self.move_items(*assignments)

    def move_items(self, *assignments: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Move items (one request, whatever a folder holds) to folders, optionally renaming them.

        Each assignment needs ``resource_type``, ``id`` and ``path`` (the destination folder);
        an optional ``name`` overwrites the item's name. Returns the moved items' Entry dicts as
        the server sends them (``assign_paths``, as documented, returns None). Raises
        ValidationError for a malformed assignment, BadResponse 400 (e.g. a folder into itself) or
        409 (a folder name taken).
        """
        if not assignments:
            raise ValidationError("assign_paths needs at least one assignment")
        body = []
        for item in assignments:
            if not isinstance(item, Mapping):
                raise ValidationError(f"an assignment must be a dict, not {item!r}")
            missing = {wire.F_RESOURCE_TYPE, wire.F_ID, wire.F_PATH} - set(item)
            if missing:
                raise ValidationError(f"assignment {dict(item)!r} lacks {sorted(missing)}")
            entry = {
                wire.F_RESOURCE_TYPE: resource_class(item[wire.F_RESOURCE_TYPE]).resource_type,
                wire.F_ID: check_int(item[wire.F_ID], wire.F_ID),
                wire.F_PATH: check_path(item[wire.F_PATH]),
            }
            if item.get(wire.F_NAME) is not None:
                entry[wire.F_NAME] = item[wire.F_NAME]
            body.append(entry)
        response = self._request("POST", wire.PATHS_ASSIGN, json={wire.F_ASSIGNMENTS: body})
        return entry_list(self._json(response), wire.F_RESULTS)

    def create_paths(self, *paths: str, exist_ok: bool = True) -> None:
        """Create folders (see :meth:`create_folders`, which also returns their entries)."""
        self.create_folders(*paths, exist_ok=exist_ok)

    def create_folders(self, *paths: str, exist_ok: bool = True) -> list[dict[str, Any]]:
        """Create folders (and missing ancestors); returns the Entry dicts the server sends for
        them (``create_paths``, as documented, returns None).

        Raises BadResponse 409 when a path exists and not ``exist_ok`` (or a segment is not a
        folder), AuthorizationRequired inside a virtual folder, BadResponse 400 for a bad name.
        """
        if not paths:
            return []
        body = {wire.F_PATHS: [check_path(p) for p in paths], wire.F_EXIST_OK: bool(exist_ok)}
        response = self._request("POST", wire.PATHS_CREATE, json=body)
        return entry_list(self._json(response), wire.F_PATHS)

    def remove_paths(self, *paths: str, recursive: bool = False) -> None:
        """Delete paths, all or nothing (files, datasets and collections are soft-deleted).

        Raises NotFoundResponse for an absent path, BadResponse 409 for a non-empty folder without
        ``recursive``.
        """
        if not paths:
            return
        body = {wire.F_PATHS: [check_path(p) for p in paths], wire.F_RECURSIVE: bool(recursive)}
        self._request("POST", wire.PATHS_REMOVE, json=body)

    def get_paths(self, *items: ResourceRef) -> dict[str, Any]:
        """The paths of Dataset / File / ShardCollection items, in one dict.

        Returns ``{"results": [{"resource_type", "id", "path"}, ...]}``. Raises ValidationError
        for an item that is not a resource.
        """
        refs = []
        for item in items:
            key = self._ref(item)
            refs.append({wire.F_RESOURCE_TYPE: key.resource_type, wire.F_ID: key.id})
        response = self._request("POST", wire.PATHS_GET, json={wire.F_ITEMS: refs})
        return self._json(response)

    @staticmethod
    def _ls_query(path: str, query_params: Mapping[str, Any] | None) -> dict[str, Any]:
        query: dict[str, Any] = {}
        for key, value in (query_params or {}).items():
            if key == wire.Q_PATH:
                continue  # the positional path wins
            if key not in wire.LS_QUERY_PARAMS:
                raise ValidationError(f"unknown ls query parameter: {key!r}")
            query[key] = value
        query[wire.Q_PATH] = check_path(path)
        return query

    def iter_ls_path(
        self, path: str, query_params: Mapping[str, Any] | None = None, *, parallel: int = 1
    ) -> Iterator[dict[str, Any]]:
        """Yield every Entry dict of a folder, fetching page after page as they are consumed.

        ``query_params`` as for :meth:`ls_path`, except that ``limit`` is the page size here (the
        entries of one request; default 250, the server allows up to 1000), not a cap: every entry
        is yielded. ``parallel`` > 1: once the first page gives the total ``count``, the other pages
        are fetched that many at a time (same requests, same order; not lazy past the first page).
        Raises NotFoundResponse for no such folder, BadResponse 400 when the path is not
        folder-like, ValidationError for an unknown param.
        """
        query = self._ls_query(path, query_params)
        for _count, results in self._iter_pages(wire.LS, params=query, parallel=parallel):
            yield from results

    def ls_path(self, path: str, query_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """List a folder: ``{"path", "count", "results": [Entry]}``, each Entry with its
        ``resource_type`` (folders, files, datasets, shard collections; a collection's shards).

        ``query_params``: ``name``, ``name_contains``, ``name_icontains``, ``order_by`` (e.g.
        ``created``, ``-name``), ``types`` (a list or comma string of resource types),
        ``tag_filters``, ``systag_filters`` (all must match), ``list`` (``data`` or ``folders``),
        ``offset`` (entries to skip), ``limit`` (at most that many entries). With ``limit``, at most
        ``limit`` entries, in one request when ``limit`` is at most 1000 (the server's largest page);
        without it, the whole folder, 250 entries a request. ``count`` is the number of matching
        entries in the folder, whatever ``limit`` says. Raises NotFoundResponse for no such folder,
        BadResponse 400 for a non-folder path, ValidationError for an unknown param or a ``limit``
        that is not a positive integer.
        """
        query = self._ls_query(path, query_params)
        if wire.Q_LIMIT not in query:
            results: list[dict[str, Any]] = []
            count = 0
            for page_count, page in self._iter_pages(wire.LS, params=query):
                count = page_count
                results.extend(page)
            return {wire.F_PATH: path, wire.F_COUNT: count, wire.F_RESULTS: results}
        wanted = check_int(query.pop(wire.Q_LIMIT), wire.Q_LIMIT)
        if wanted < 1:
            raise ValidationError(f"limit must be a positive integer, not {wanted}")
        offset = check_int(query.pop(wire.Q_OFFSET, 0), wire.Q_OFFSET)
        results = []
        while True:
            size = min(wanted - len(results), wire.PAGE_LIMIT_MAX)
            count, page, more = self._page(wire.LS, None, query, size, offset, None)
            results.extend(page[:size])
            offset += len(page)
            if not more or not page or len(results) >= wanted:
                return {wire.F_PATH: path, wire.F_COUNT: count, wire.F_RESULTS: results}

    def stat_path(self, path: str) -> dict[str, Any]:
        """The Entry of one path (``resource_type``, ``id``, ``path``, size, times...).

        Raises NotFoundResponse when absent.
        """
        response = self._request("GET", wire.STAT, params={wire.Q_PATH: check_path(path)})
        return self._json(response)
