"""``python -m nitedr_ros`` is the same as ``nitedr``."""

import sys

from .cli import main

sys.exit(main())
