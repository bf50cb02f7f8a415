"""Values of the mount's options that argparse cannot read alone: durations with units, the ``-o``
lists of mount(8) and fstab, the ownership and modes of what the mount shows, and its fsname.

- ``parse_duration``: ``5`` (seconds), ``500ms``, ``5s``, ``2m``, ``1h``, ``1d``; every time option.
- ``split_option_list``: ``-o a=b,c`` items -> orionfs settings (every ``orionfs mount`` flag, as
  ``name=value`` with ``_`` or ``-``, and ``config_dir=DIR``), words that mount(8) and systemd
  consume (``noauto``, ``_netdev``, ``user``, ``x-systemd.automount``, ...: ignored here), and the
  rest, passed to libfuse and the kernel (``nosuid``, ``allow_other``, ...).
- ``permission_modes``: file and folder modes from ``--umask``, ``--file-mode``, ``--dir-mode``; a
  umask never makes files executable.
- ``fsname``: what mount(8) and df show as the source, ``orion:PROFILE:PATH``.

No I/O and no environment reads: the CLI and the mount process call these with what they parsed.
"""

from __future__ import annotations

import argparse
import grp
import pwd
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: Seconds per duration unit (no unit: seconds).
DURATION_UNITS: Mapping[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\A\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*\Z", re.IGNORECASE)

#: ``-o`` words consumed by mount(8), fstab and systemd, not by the filesystem: accepted, ignored.
IGNORED_WORDS: frozenset[str] = frozenset(
    {"defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "_netdev",
     "nofail", "rw", "fuse.orionfs", "orionfs"}
)  # fmt: skip
#: ``-o`` prefixes of the same kind (``x-systemd.automount``, ``x-gvfs-show``, ``comment=...``).
IGNORED_PREFIXES: tuple[str, ...] = ("x-", "X-", "comment=")
#: ``-o`` words that name an orionfs setting under another name.
ALIASES: Mapping[str, str] = {"ro": "read_only", "nonempty": "allow_non_empty"}
#: Settings reachable with ``-o`` that are not ``orionfs mount`` flags.
EXTRA_SETTINGS: frozenset[str] = frozenset({"config_dir"})
#: Flags that ``-o`` does not set: ``debug`` keeps libfuse's meaning (every request logged), a
#: mount run by mount(8) is never in the foreground, and the mount point is an argument.
NOT_SETTINGS: frozenset[str] = frozenset({"debug", "foreground", "mountpoint"})

#: Modes of what the mount shows when no option says otherwise.
DEFAULT_FILE_MODE: int = 0o644
DEFAULT_DIR_MODE: int = 0o755


def parse_duration(text: str | float) -> float:
    """Seconds of a duration such as ``5``, ``2.5``, ``500ms``, ``5s``, ``2m``, ``1h`` or ``1d``;
    an argparse type (ArgumentTypeError for anything else). A plain number is taken as it is
    (the option's own check refuses negative or infinite ones in one line)."""
    if isinstance(text, int | float):
        return float(text)
    try:
        return float(text)  # a plain number of seconds, as written back by repr (1e-05 too)
    except ValueError:
        pass
    match = _DURATION.match(str(text))
    unit = match.group(2).lower() if match else ""
    if not match or (unit and unit not in DURATION_UNITS):
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (a number of seconds, or with a unit: 500ms, 5s, 2m, 1h)"
        )
    return float(match.group(1)) * DURATION_UNITS.get(unit, 1.0)


def format_duration(seconds: float) -> str:
    """Short text of a duration: ``45s``, ``3m12s``, ``2h05m``, ``3d04h``."""
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.0f}s" if seconds >= 1 or seconds == 0 else f"{seconds:.1f}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def parse_mode(text: str) -> int:
    """A mode or umask in octal (``022``, ``0640``, ``0o750``); an argparse type."""
    value = str(text).strip().lower().removeprefix("0o")
    if not value or not re.fullmatch(r"[0-7]{1,4}", value):
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r} (e.g. 027 or 0640)")
    mode = int(value, 8)
    if mode > 0o777:
        raise argparse.ArgumentTypeError(f"{text!r}: only permission bits (at most 0777)")
    return mode


def parse_uid(text: str) -> int:
    """A user id or name; an argparse type."""
    return _parse_id(text, lambda name: pwd.getpwnam(name).pw_uid, "user")


def parse_gid(text: str) -> int:
    """A group id or name; an argparse type."""
    return _parse_id(text, lambda name: grp.getgrnam(name).gr_gid, "group")


def _parse_id(text: str, lookup: object, what: str) -> int:
    value = str(text).strip()
    if value.isdigit():
        return int(value)
    try:
        return int(lookup(value))  # type: ignore[operator]
    except KeyError:
        raise argparse.ArgumentTypeError(f"no such {what}: {value!r}") from None


def permission_modes(
    umask: int | None, file_mode: int | None, dir_mode: int | None
) -> tuple[int, int]:
    """(file mode, folder mode) of writable items: ``--file-mode``/``--dir-mode`` where given,
    else 0666/0777 less ``--umask``, else 0644/0755. A umask never adds an execute bit to files
    (their base is 0666); read-only kinds then lose the write bits (orionfs.fuse.operations)."""
    files = file_mode if file_mode is not None else (
        0o666 & ~umask if umask is not None else DEFAULT_FILE_MODE
    )  # fmt: skip
    folders = dir_mode if dir_mode is not None else (
        0o777 & ~umask if umask is not None else DEFAULT_DIR_MODE
    )  # fmt: skip
    return files & 0o777, folders & 0o777


def fsname(profile: str, root: str) -> str:
    """The source mount(8), df and /proc/self/mountinfo show: ``orion:PROFILE:PATH``."""
    return f"orion:{profile}:{root or '/'}"


def escape_option_value(value: str) -> str:
    """A value made safe inside a libfuse ``-o`` list (``,`` and ``\\`` escaped)."""
    return value.replace("\\", "\\\\").replace(",", "\\,")


# -- -o lists ----------------------------------------------------------------------------------------


@dataclass
class OptionList:
    """An ``-o`` list sorted out: orionfs settings by flag name (``dest``), passthrough options
    for libfuse and the kernel, and the words left to mount(8) and systemd."""

    settings: dict[str, str | bool] = field(default_factory=dict)
    fuse: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def split_items(values: Iterable[str]) -> list[str]:
    """``["a=b,c", "d"]`` -> ``["a=b", "c", "d"]``; ``\\,`` keeps a comma inside a value."""
    items: list[str] = []
    for value in values:
        current: list[str] = []
        chars = iter(value)
        for char in chars:
            if char == "\\":
                current.append(next(chars, "\\"))
            elif char == ",":
                items.append("".join(current))
                current = []
            else:
                current.append(char)
        items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def split_option_list(values: Iterable[str], settings: Iterable[str]) -> OptionList:
    """Sort ``-o`` values: a word naming one of ``settings`` (flag dests; ``-`` and ``_`` alike,
    plus ALIASES and EXTRA_SETTINGS) is an orionfs setting (``name`` alone: True), IGNORED_WORDS
    and IGNORED_PREFIXES are left to mount(8) and systemd, anything else goes to libfuse."""
    known = {name for name in settings if name not in NOT_SETTINGS} | EXTRA_SETTINGS
    result = OptionList()
    for item in split_items(values):
        key, sep, value = item.partition("=")
        name = key.strip().replace("-", "_")
        name = ALIASES.get(name, name)
        if item in IGNORED_WORDS or key in IGNORED_WORDS or item.startswith(IGNORED_PREFIXES):
            result.ignored.append(item)
        elif name in known:
            result.settings[name] = value if sep else True
        else:
            result.fuse.append(item)
    return result


def parse_fuse_options(items: Iterable[str]) -> dict[str, str | bool]:
    """libfuse passthrough items -> ``{"a": "b", "c": True}`` (values escaped for libfuse)."""
    options: dict[str, str | bool] = {}
    for item in split_items(items):
        key, sep, value = item.partition("=")
        options[key.strip()] = escape_option_value(value) if sep else True
    return options
