"""sgpy: send SCSI commands to Linux devices through the sg driver."""

from sgpy import errors
from sgpy.errors import *  # noqa: F401,F403

__version__ = "0.1.0"
