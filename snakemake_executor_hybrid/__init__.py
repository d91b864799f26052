"""Hybrid Snakemake executor: route each rule to the backend that suits it."""

from .adaptive.learned import learned

__all__ = ["learned"]
