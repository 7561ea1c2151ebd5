"""``python -m scheduler``: run one dispatcher until SIGTERM or Ctrl-C."""

from __future__ import annotations

import sys

from queue_core.errors import JobledgerError
from queue_core.logging import configure_logging
from queue_core.settings import Settings

from .dispatcher import Dispatcher


def main() -> int:
    configure_logging(stdlib=True)
    try:
        dispatcher = Dispatcher(Settings.from_env())
        dispatcher.install_signal_handlers()
        dispatcher.run()
    except JobledgerError as exc:
        print(f"jobledger dispatcher: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
