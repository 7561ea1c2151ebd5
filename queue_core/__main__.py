"""``python -m queue_core`` is the ``jobledger`` command."""

import sys

from queue_core.cli.main import main

sys.exit(main())
