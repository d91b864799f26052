"""Human-gated rules for Snakemake (the gate API lands in a later release)."""
