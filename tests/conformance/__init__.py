"""Snakemake's own test workflows run through ``--executor hybrid`` (conformance)."""
