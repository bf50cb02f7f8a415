"""``python -m orionfs.cli``: the ``orionfs`` command (also how the mount process is started)."""

import sys

from orionfs.cli import main

sys.exit(main())
