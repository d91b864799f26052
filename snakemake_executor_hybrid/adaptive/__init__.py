"""Adaptive execution: the run journal, requests learned from it, failover.

``journal``  SQLite rows of every job attempt (background writer)
``learned``  the resource function of Snakefiles (standard library only)
``advisor``  answers learned() from the journal during a run
``model``    predictions from input size, safety margin, retry sizing (pure)
``usage``    what local jobs use (process trees, containers)
``tracker``  the executor's side: journal rows from reports, failover
``cli``      snakemake-hybrid
"""
