"""Lesion segmentation on 2-D phantom slices."""
