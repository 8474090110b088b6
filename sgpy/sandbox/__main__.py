"""``python -m sgpy.sandbox [options] -- COMMAND ARGS...``"""

import sys

from sgpy.sandbox import main

sys.exit(main())
