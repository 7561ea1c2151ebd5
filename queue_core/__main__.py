"""``python -m queue_core`` is the ``jobledger`` command."""

import sys

from .cli.main import main

sys.exit(main())
