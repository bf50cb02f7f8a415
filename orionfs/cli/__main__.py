"""``python -m orionfs.cli``: the ``orionfs`` command (the mount daemon re-executes itself this way)."""

import sys

from orionfs.cli import main

sys.exit(main())
