"""The data-validation engine: a dataset's layout checks and its read through the DataLoader, in one report.

:func:`aimed.validation.report.validate` builds the report; :mod:`aimed.validation.layout` checks
the tutorial's ``labels.csv`` layout; :mod:`aimed.validation.reading` reads each split.
"""
