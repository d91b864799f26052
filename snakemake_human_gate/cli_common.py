"""What the ``snakemake-gate`` commands share."""

import argparse

from .store import GateStore, resolve_dir


def open_store(args: argparse.Namespace) -> GateStore:
    """The store of ``--dir`` (or its default); remembered on ``args`` so that ``main``
    reports what it found (answers discarded, entries left unsigned) at the end."""
    store = GateStore(resolve_dir(args.dir))
    args.stores.append(store)
    return store
