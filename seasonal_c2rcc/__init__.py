"""seasonal-c2rcc: seasonal Sentinel-2 C2RCC water-quality composites.

The package holds all logic of the pipeline; the Snakemake ``scripts/`` are thin adapters.
"""

__version__ = "0.1.0"
