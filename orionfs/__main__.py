"""``python -m orionfs``: the same as the ``orionfs`` command."""

import sys

from orionfs.cli import main

sys.exit(main())
