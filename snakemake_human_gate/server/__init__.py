"""``snakemake-gate serve``: the gate store over HTTP (REST API, webhooks, one-click links).

Needs the ``server`` extra (FastAPI, uvicorn): ``pip install
'snakemake-executor-plugin-hybrid[server]'``. Nothing here is imported by the rest of
the package; the modules that need FastAPI import it themselves (``app``, ``run``), the
others (``payload``, ``views``, ``urls``, ``pages``) are plain Python.
"""
