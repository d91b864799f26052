"""What the ``snakemake-gate`` commands share."""

import argparse

from .store import GateStore, resolve_dir


def open_store(args: argparse.Namespace, create: bool = False) -> GateStore:
    """The store of ``--dir`` (or its default); remembered on ``args`` so that ``main``
    reports what it found (answers discarded, entries left unsigned) at the end.
    Only commands that set a store up (``create``) make a missing one: the others refuse
    (a wrong directory, most likely) rather than show an empty store."""
    store = GateStore(resolve_dir(args.dir), create=create)
    args.stores.append(store)
    return store
