"""Hybrid Snakemake executor: route each rule to the backend that suits it."""
