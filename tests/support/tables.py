"""Table-driven tests: each row a named tuple whose first field is its name, shown as the test's id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest


def cases(rows: Iterable[Any]) -> list[Any]:
    """``rows`` as ``pytest.param``s with each row's ``name`` as its id.

    ``@pytest.mark.parametrize("row", cases(ROWS))``, then the test reads ``row.history``, ``row.expected``...
    """
    return [pytest.param(row, id=row.name) for row in rows]
