"""Changes through the cache: mkdir, rmdir, unlink, rename, uploads and the content time, each one
request (or the few the rule needs), the cache updated from the server's answer (a mixin of
CachedSession; no FUSE, no errnos)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from orionfs.client import wire
from orionfs.client.bodies import Piece
from orionfs.exceptions import (
    AlreadyExists,
    BadResponse,
    FolderNotEmpty,
    IsAFolder,
    NotAFolder,
    NotFoundResponse,
    NotWritable,
)
from orionfs.fs.entry import Entry
from orionfs.fs.listing import Listing
from orionfs.fs.mountpath import new_name, normalize, not_found, split
from orionfs.fs.names import display_base

if TYPE_CHECKING:
    from orionfs.fs.cache import CachedSession

logger = logging.getLogger(__name__)


class Changes:
    """The mutations of CachedSession."""

    def mkdir(self, path: str) -> Entry:
        """Create a folder (one request); returns its Entry.

        Raises AlreadyExists if the path exists, NotFoundResponse / NotAFolder for a bad parent,
        and what the session raises (AuthorizationRequired in virtual folders).
        """
        path = normalize(path)
        if path == "/":
            raise AlreadyExists(f"{path}: the mount root exists")
        try:
            self.lookup(path)
        except NotFoundResponse:
            pass
        else:
            raise AlreadyExists(f"{path}: exists")
        parent, name = split(path)
        orion = self._join(self._existing_folder(parent), new_name(name))
        try:
            created = self._call("create_paths", self.session.create_folders, orion, exist_ok=False)
        except BadResponse as exc:
            if exc.status_code == 409:
                raise AlreadyExists(f"{path}: exists", exc.response, 409) from exc
            raise
        entry = self._answer_entry(created, lambda e: e.path == orion)
        if entry is None:  # the server sent no entry: learn it as the next lookup would
            with self._lock:
                self._drop_listing(parent)
            return self.lookup(path)
        with self._lock:
            self._insert(parent, name, entry, known_absent=True)
            # A new folder is empty: lookups inside it (cp -r, tar x) cost nothing until the TTL.
            self._flights.forget(("ls", path))
            self._listings[path] = Listing({}, True)
        return entry

    def rmdir(self, path: str) -> None:
        """Remove an empty folder (``remove_paths``, never recursive).

        Raises FolderNotEmpty if the cached listing is not empty, or the server answers 409 (it
        checks emptiness atomically); NotAFolder for a non-folder; NotFoundResponse.
        """
        path = normalize(path)
        entry = self.lookup(path)
        if not entry.is_folder:
            raise NotAFolder(f"{path}: not a folder")
        self._remove_folder(path, entry)
        with self._lock:
            self._remove(*split(path), entry)
            self._drop_subtree(path)

    def unlink(self, path: str) -> None:
        """Delete a file, dataset or shard by id (``delete_resource``), so duplicates are exact.

        Raises IsAFolder for folders and collections, NotFoundResponse, and what the session raises.
        """
        path = normalize(path)
        entry = self.lookup(path)
        if entry.is_folder:
            raise IsAFolder(f"{path}: is a folder")
        deleted = self._call("delete_resource", self.session.delete_resource, entry.ref)
        with self._lock:
            self._remove(*split(path), entry)
        if not deleted:  # someone else deleted it meanwhile
            raise not_found(path)

    def rename(self, old: str, new: str) -> Entry:
        """Move and/or rename with one ``assign_paths``; returns the moved Entry.

        An existing target file is deleted (by id) after the assign, so there is never a moment
        where neither exists; an existing empty target folder is removed first. Raises
        FolderNotEmpty for a non-empty target folder, NotAFolder (folder over a non-folder, or a
        destination parent that is not a folder), IsAFolder (non-folder over a folder),
        NotFoundResponse, and what the session raises.
        """
        old, new = normalize(old), normalize(new)
        src = self.lookup(old)
        if old == new or old == "/":
            return src
        new_parent, new_name_ = split(new)
        dest_orion = self._folder_orion_path(new_parent)
        target = self.find(new)
        if target is not None and target.key == src.key:
            return src
        if target is not None:
            if src.is_folder and not target.is_folder:
                raise NotAFolder(f"{new}: not a folder")
            if not src.is_folder and target.is_folder:
                raise IsAFolder(f"{new}: is a folder")
            if src.is_folder:
                # Orion refuses a folder name that exists in the destination: make room first.
                self._remove_folder(new, target)
                with self._lock:
                    self._remove(new_parent, new_name_, target)
                    self._drop_subtree(new)
                target = None
        name = self._name_for(new_name_, target, src)
        assignment = {
            wire.F_RESOURCE_TYPE: src.kind,
            wire.F_ID: src.id,
            wire.F_PATH: dest_orion,
            wire.F_NAME: name,
        }
        answer = self._call("assign_paths", self.session.move_items, assignment)
        moved = self._answer_entry(answer, lambda e: e.key == src.key)
        if moved is None:  # the result is known: the source under its new name
            moved = src.renamed(name, self._join(dest_orion, name))
        self._same_content(src, moved)
        error = self._delete_replaced(target, f"rename {old} -> {new}")
        with self._lock:
            self._remove(*split(old), src)
            if src.is_folder:
                self._drop_subtree(old)
            if target is not None and error is None:
                self._remove(new_parent, new_name_, target)
            self._insert(new_parent, new_name_, moved, known_absent=target is None)
            if error is not None:
                self._drop_listing(new_parent)
        if error is not None:
            raise error
        return moved

    def create_file(self, path: str, fileobj: BinaryIO, size: int | None = None) -> Entry:
        """Upload a new file at a path; returns its Entry.

        An existing file at the path is replaced like a rename over it: the upload first, then the
        old file deleted by id. Raises IsAFolder if a folder is there, NotFoundResponse /
        NotAFolder for a bad parent, and what the session raises.
        """
        session = self.session
        return self._create(
            path, lambda folder, name: session.upload_file(folder, name, fileobj, size=size)
        )

    def create_file_stream(self, path: str, chunks: Iterable[Piece]) -> Entry:
        """``create_file`` from the pieces ``chunks`` yields, sent while they come (a file still
        being written); a stream cut short (``chunks`` raises) creates nothing."""
        session = self.session
        return self._create(
            path, lambda folder, name: session.upload_file_stream(folder, name, chunks)
        )

    def _create(self, path: str, send: Callable[[str, str], Any]) -> Entry:
        """``create_file`` with ``send(Orion folder, Orion name)`` making the upload request."""
        path = normalize(path)
        parent, name = split(path)
        existing = self.find(path)
        if existing is not None and existing.is_folder:
            raise IsAFolder(f"{path}: is a folder")
        folder = self._folder_orion_path(parent)
        orion = self._name_for(name, existing, None)
        uploaded = self._call("upload_file", send, folder, orion)
        entry = Entry.from_resource(uploaded, self._join(folder, orion))
        error = self._delete_replaced(existing, f"create {path}")
        with self._lock:
            if existing is not None and error is None:
                self._remove(parent, name, existing)
            self._insert(parent, name, entry, known_absent=existing is None)
            if error is not None:
                self._drop_listing(parent)
        if error is not None:
            raise error
        return entry

    def replace_content(self, path: str, fileobj: BinaryIO, size: int | None = None) -> Entry:
        """Replace a file's content (same id, tags kept); returns the updated Entry.

        Raises IsAFolder for folders, NotWritable for read-only kinds (datasets, shards),
        NotFoundResponse, and what the session raises.
        """
        session = self.session
        return self._replace_with(
            path, lambda ref: session.replace_file_content(ref, fileobj, size=size)
        )

    def replace_content_stream(self, path: str, chunks: Iterable[Piece]) -> Entry:
        """``replace_content`` from the pieces ``chunks`` yields, sent while they come; a stream
        cut short (``chunks`` raises) changes nothing."""
        session = self.session
        return self._replace_with(
            path, lambda ref: session.replace_file_content_stream(ref, chunks)
        )

    def _replace_with(self, path: str, send: Callable[[Any], Any]) -> Entry:
        """``replace_content`` with ``send(the file's ResourceKey)`` making the request."""
        path = normalize(path)
        entry = self.lookup(path)
        if entry.is_folder:
            raise IsAFolder(f"{path}: is a folder")
        if not entry.is_file:
            raise NotWritable(f"{path}: a {entry.kind} is read-only")
        replaced = self._call("replace_file_content", send, entry.ref)
        new = Entry.from_resource(replaced, entry.path)
        with self._lock:
            self._replace(path, entry, new)
        return new

    def set_mtime(self: CachedSession, path: str, mtime_ns: int) -> Entry:
        """Set an item's content time (``touch``, ``cp -p``, ``rsync -a``) with one request; returns
        the updated Entry. Raises NotWritable for kinds without one, NotFoundResponse."""
        path = normalize(path)
        entry = self.lookup(path)
        if entry.kind not in (wire.FILE, wire.DATASET):
            raise NotWritable(f"{path}: a {entry.kind} keeps no modification time")
        try:
            answer = self._call("set_mtime", self.session.set_mtime, entry.ref, mtime_ns)
        except BadResponse as exc:
            if exc.status_code != 400:
                raise
            logger.info("%s: the server keeps no modification time; kept locally", path)
            new = self._times.keep(entry, mtime_ns)  # orionfs.fs.localtimes
        else:
            fields = {wire.F_RESOURCE_TYPE: entry.kind, wire.F_PATH: entry.path, **answer}
            new = Entry.from_wire(fields, entry.collection)
            self._same_content(entry, new)
        with self._lock:
            self._replace(path, entry, new)
        return new

    @staticmethod
    def _answer_entry(items: list[dict[str, Any]], match: Callable[[Entry], bool]) -> Entry | None:
        """The Entry of the server's answer to a create or a move that ``match`` picks, if any."""
        for item in items:
            entry = Entry.from_wire(item)
            if match(entry):
                return entry
        return None

    def _delete_replaced(self, target: Entry | None, what: str) -> BaseException | None:
        """Delete the file a rename or an upload replaced (after the new one is in place); the
        error, if that fails (the caller records the move first, then raises it)."""
        if target is None:
            return None
        try:
            self._call("delete_resource", self.session.delete_resource, target.ref)
        except Exception as exc:
            logger.warning("%s: the replaced file was kept: %s", what, exc)
            return exc
        return None

    def _remove_folder(self, path: str, entry: Entry) -> None:
        """``remove_paths`` of a folder, never recursive; FolderNotEmpty if it is not empty."""
        with self._lock:
            listing = self._listings.get(path)
        if listing is not None and listing.names:
            raise FolderNotEmpty(f"{path}: folder not empty")
        try:
            self._call("remove_paths", self.session.remove_paths, entry.path)
        except BadResponse as exc:
            if exc.status_code == 409:
                raise FolderNotEmpty(f"{path}: folder not empty", exc.response, 409) from exc
            raise

    @staticmethod
    def _name_for(display: str, target: Entry | None, src: Entry | None) -> str:
        """The Orion name to give ``display``: a replaced target's or the moved entry's own name
        where it shows as exactly that (keeps its own name), else a new name."""
        for entry in (target, src):
            if entry is not None and display_base(entry.name) == display:
                return entry.name
        return new_name(display)
