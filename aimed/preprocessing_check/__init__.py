"""The preprocessing-check engine: a run's preprocessed batches checked against its compiled model.

:func:`aimed.preprocessing_check.batches.check_splits` reads every split and checks its batches
(:mod:`~aimed.preprocessing_check.shapes`, :mod:`~aimed.preprocessing_check.labels`);
:mod:`aimed.preprocessing_check.samples` makes the sample grid of the first training batch.
"""
