"""``python -m sgpy``: the ``sgpy`` command line (see :mod:`sgpy.cli`)."""

import sys

from sgpy.cli import main

if __name__ == "__main__":
    sys.exit(main())
