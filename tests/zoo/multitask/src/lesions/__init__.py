"""lesions: joint lesion segmentation + grading (2D), team pipeline on aimed.

Components (see runs/*/config.yaml):
    lesions.data.CaseLoader          cases on disk -> python generators
    lesions.prep.LesionPrep          normalisation, channel axis, batching
    lesions.net.TwoHeadNetBuilder    one model, two heads ("mask", "grade")
    lesions.scoring.LesionScorer     per-case dice and grade correctness
"""

__version__ = "0.3.1"

HEADS = ("mask", "grade")
N_GRADES = 3
