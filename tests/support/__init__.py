"""What the tests share: helpers (``from tests.support.processes import Procs``) and fixtures (``fixtures.py``).

Nothing here edits ``sys.path``: pytest puts the repository on it (``pythonpath`` in pyproject.toml), and
``tests`` is a package, so every module imports these by their full name.
"""
