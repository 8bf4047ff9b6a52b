"""The label space: the ten digits, in class-index order."""

DIGITS = tuple(str(d) for d in range(10))
NUM_CLASSES = len(DIGITS)
