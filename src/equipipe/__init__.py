"""equipipe: a reproducible workflow from raw research data to evaluated models.

The library does the science; the Snakemake rules in ``workflow/`` only move files.
Nothing in this package imports Snakemake.
"""

__version__ = "0.1.0"
