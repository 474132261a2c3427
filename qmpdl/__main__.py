"""``python -m qmpdl``: the same as the ``qmpdl`` command."""

import sys

from qmpdl.cli import main

sys.exit(main())
