"""What the tests share: helpers, imported by name (``from tests.support.processes import Procs``), and
fixtures (``fixtures.py``, registered for every test by ``tests/conftest.py``).

Nothing here edits ``sys.path``: ``tests`` is a package and pytest puts the repository on the path
(``pythonpath`` in pyproject.toml).

- ``fixtures``: the session's redis-server, a test's own ones (``own_redis``, ``store_server``,
  ``fresh``), settings, client, store, env, procs, ``fleet`` (``@pytest.mark.fleet(workers=2, env=...)``),
  ``clock`` and ``timer``, moto's ``s3_endpoint``, the ``lake`` depots, an embedded home.
- ``processes``: ``Procs`` (spawn, worker, dispatcher, ``fleet``, cli), ``eventually``, /proc scans
  (``pid_alive``, ``process_table``, ``children_of``, ``cmdlines_seen``), ``jobledger_up``.
- ``clock``: the one fake ``Clock`` and ``T0``; ``schedules``: the one timer (``new_timer``, ``step_minutes``),
  what a schedule's history says (``fires``, ``outcomes``, ``fired_ticks``), ``soon`` for real schedulers.
- ``events``: ``Recorded`` histories to fold through the real ``apply_*`` (``recorded``, ``fold``,
  ``fold_more``) and ``project`` for comparing decided events; ``tables``: ``cases`` for table rows.
- ``jobs``: job files and definitions (workspace, sourced, resource, SQL, native workflow tasks);
  ``runs``: submit and wait, stdout lines; ``store``: batches to append, the log's state.
- ``redis_server``, ``s3``, ``git_server``, ``servers``, ``console_http``, ``browser``, ``terminal``: the
  outside things tests talk to; ``leaks``: secrets looked for everywhere; ``archive_files``: archives.
- ``faults`` and ``crashing_worker``: marker jobs, the oracle's verdict and workers that die at a hook;
  ``workload`` and ``biglog``: histories for audit and scale tests; ``paths``: REPO and EXAMPLES.
"""
