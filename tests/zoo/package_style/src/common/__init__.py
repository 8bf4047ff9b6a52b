"""Constants and small helpers shared by the pipeline, model and scoring packages."""
