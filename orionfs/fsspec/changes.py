"""How OrionFileSystem changes the tree: folders, removal and moves (one request each).

``mkdir``/``makedirs`` create a folder and its parents in one request; ``rm`` removes every path
given (globs expanded), folders with all they hold when ``recursive``, all or nothing in one
request; ``mv`` is one assign request whatever a folder holds.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable
from glob import has_magic
from typing import TYPE_CHECKING, Any

from orionfs.client import wire
from orionfs.fsspec import urls
from orionfs.fsspec.entries import content_ref, is_directory, orion_name
from orionfs.fsspec.errors import not_empty, orion_errors, refuse

if TYPE_CHECKING:
    from fsspec.dircache import DirCache

    from orionfs.client.session import OrionSession

__all__ = ["ChangesMixin"]

_NOT_A_DIRECTORY = refuse(NotADirectoryError, errno.ENOTDIR)


class ChangesMixin:
    """mkdir, makedirs, rmdir, rm, rm_file and mv of OrionFileSystem."""

    session: OrionSession
    dircache: DirCache

    # Provided by fsspec's AbstractFileSystem and the other parts of OrionFileSystem.
    _strip_protocol: Any
    _parent: Any
    expand_path: Any
    exists: Any
    info: Any
    invalidate_cache: Any
    _orion_path: Any
    _cached_entry_quiet: Any
    _forget_created: Any
    _forget_removed: Any
    _remember: Any
    _write_target: Any

    def _create_folders(self, path: str, exist_ok: bool, new: bool = False) -> None:
        """Create a folder and its missing parents (one request) and note it in the cache;
        ``new``: it is known not to have existed (so its listing is known: empty)."""
        with orion_errors(path, conflict=self._conflict_of(path), invalid=_NOT_A_DIRECTORY):
            entries = self.session.create_folders(self._orion_path(path), exist_ok=exist_ok)
        if not entries:
            self._forget_created(path)
            return
        self._remember(path, entries[0])
        if new or not exist_ok:
            self.dircache[path] = []

    def _conflict_of(self, path: str) -> Callable[[str, str], OSError]:
        """The error of a 409 from creating ``path``: FileExistsError if it exists, else
        NotADirectoryError (something above it is not a folder)."""

        def make(message: str, where: str) -> OSError:
            self.invalidate_cache(self._parent(path))
            if self.exists(path):
                return FileExistsError(errno.EEXIST, message, where)
            return NotADirectoryError(errno.ENOTDIR, message, where)

        return make

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Create a folder. Raises FileExistsError, FileNotFoundError (no parent and not
        ``create_parents``), NotADirectoryError, PermissionError."""
        path = self._strip_protocol(path)
        if not create_parents:
            parent = self.info(self._parent(path))
            if not is_directory(parent):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", self._parent(path))
        self._create_folders(path, exist_ok=False)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Create a folder and its missing parents (one request; none when the cache already
        knows the folder and ``exist_ok``)."""
        path = self._strip_protocol(path)
        if exist_ok:
            known = self._cached_entry_quiet(path)
            if known is not None and is_directory(known):
                return
        self._create_folders(path, exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        """Remove an empty folder. Raises OSError ENOTEMPTY, NotADirectoryError."""
        path = self._strip_protocol(path)
        if not is_directory(self.info(path)):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        with orion_errors(path, conflict=not_empty):
            self.session.remove_paths(self._orion_path(path), recursive=False)
        self._forget_removed(path)

    def rm_file(self, path: str) -> None:
        """Remove one path (a folder only if empty)."""
        path = self._strip_protocol(path)
        with orion_errors(path, conflict=not_empty):
            self.session.remove_paths(self._orion_path(path), recursive=False)
        self._forget_removed(path)

    def rm(
        self, path: str | list[str], recursive: bool = False, maxdepth: int | None = None
    ) -> None:
        """Remove files, and folders with everything in them (``recursive``), in one request for
        all the paths (globs expanded). Raises FileNotFoundError, IsADirectoryError (a folder
        without ``recursive``), PermissionError (shards, virtual folders)."""
        if maxdepth is not None:
            super().rm(path, recursive=recursive, maxdepth=maxdepth)  # type: ignore[misc]
            return
        paths = _outermost(self.expand_path(path))
        for one in paths:
            info = self.info(one)
            if is_directory(info) and not recursive:
                raise IsADirectoryError(errno.EISDIR, "a directory needs recursive=True", one)
            if info.get(wire.F_RESOURCE_TYPE) == wire.SHARD:
                raise PermissionError(errno.EACCES, "a shard is read-only", one)
        orion_paths = [self._orion_path(p) for p in paths]
        with orion_errors(paths[0] if len(paths) == 1 else str(paths), conflict=not_empty):
            self.session.remove_paths(*orion_paths, recursive=recursive)
        for one in paths:
            self._forget_removed(one)

    def mv(
        self, path1: Any, path2: str, recursive: bool = False, maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        """Move or rename (one request, whatever a folder holds). A glob or a list moves into
        the folder ``path2``; one path moves into ``path2`` if that is a folder, else becomes it
        (a File there is replaced). Raises FileNotFoundError, FileExistsError (a folder of that
        name exists there), IsADirectoryError / NotADirectoryError (a file over a folder or the
        reverse), PermissionError, OSError EINVAL (a folder into itself)."""
        path2 = self._strip_protocol(path2)
        if isinstance(path1, list) or has_magic(self._strip_protocol(path1)):
            sources = _outermost(self.expand_path(path1))
            self.makedirs(path2, exist_ok=True)
            self._move([(self.info(s), s, path2, None) for s in sources], path2)
            return
        path1 = self._strip_protocol(path1)
        source = self.info(path1)
        final, name = path2, path2.rsplit(urls.SEP, 1)[-1]
        target = self._info_or_none(path2)
        if target is not None and is_directory(target) and path1 != path2:
            final = f"{path2}{urls.SEP}{path1.rsplit(urls.SEP, 1)[-1]}" if path2 else path1
            name = None  # moved into a folder: the item keeps its Orion name
            target = self._info_or_none(final)
        if final == path1:
            return
        replaced = None
        if target is not None:
            if is_directory(source) and not is_directory(target):
                raise NotADirectoryError(errno.ENOTDIR, "a directory cannot replace a file", final)
            if not is_directory(source) and is_directory(target):
                raise IsADirectoryError(errno.EISDIR, "a file cannot replace a directory", final)
            if not is_directory(target):
                replaced = self._write_target(final, "wb")
        self._move([(source, path1, self._parent(final), name)], final)
        if replaced is not None:  # after the move, so that the name is never empty
            with orion_errors(final):
                self.session.delete_resource(content_ref(replaced))
            self._forget_removed(final)

    def _info_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return self.info(path)
        except FileNotFoundError:
            return None

    def _move(self, moves: list[tuple[dict[str, Any], str, str, str | None]], where: str) -> None:
        """One assign request: each ``(source info, source path, destination folder, new name or
        None to keep the Orion name)``; a missing destination folder is made first."""
        assignments = []
        for info, source, folder, name in moves:
            if info.get(wire.F_ID) is None or info.get(wire.F_RESOURCE_TYPE) == wire.SHARD:
                raise PermissionError(errno.EACCES, "this cannot be moved", source)
            assignments.append({
                wire.F_RESOURCE_TYPE: info[wire.F_RESOURCE_TYPE],
                wire.F_ID: info[wire.F_ID],
                wire.F_PATH: self._orion_path(folder),
                wire.F_NAME: name if name is not None else orion_name(info),
            })  # fmt: skip
        try:
            with orion_errors(where):
                self.session.move_items(*assignments)
        except FileNotFoundError:  # the destination folder is missing: make it, then move
            for folder in {folder for _, _, folder, _ in moves}:
                self.makedirs(folder, exist_ok=True)
            with orion_errors(where):
                self.session.move_items(*assignments)
        for _, source, folder, _ in moves:
            self._forget_removed(source)
            self._forget_created(folder)
            self.dircache.pop(folder, None)


def _outermost(paths: Iterable[str]) -> list[str]:
    """The paths that are not inside another of them (sorted)."""
    out: list[str] = []
    for path in sorted(set(paths)):
        if "" in out or any(path.startswith(kept + urls.SEP) for kept in out):
            continue
        out.append(path)
    return out
