"""The tests' fixtures live in ``tests/support/fixtures.py``; this registers them for every test module."""

pytest_plugins = ["tests.support.fixtures", "tests.support.fuzzing"]
