"""``python -m services.cli`` is ``vigil``."""

import sys

from services.cli import main

sys.exit(main())
