"""Pipeline stages: plain functions of a run context, with no knowledge of Snakemake or argv."""
