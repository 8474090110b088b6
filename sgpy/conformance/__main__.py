"""``python -m sgpy.conformance TARGET``: the same as ``sgpy conform TARGET``."""

import sys

from sgpy.conformance import main

sys.exit(main())
