import numpy as np

from aimed import EvaluatorBase


def mask_dice(y_true, y_pred):
    """Hard dice of one case; the mask head outputs logits, so threshold at 0."""
    t = np.asarray(y_true["mask"]) > 0.5
    p = np.asarray(y_pred["mask"]) > 0.0
    denom = t.sum() + p.sum()
    if denom == 0:
        return 1.0
    return float(2.0 * np.logical_and(t, p).sum() / denom)


def grade_correct(y_true, y_pred):
    return float(int(np.argmax(y_pred["grade"])) == int(y_true["grade"]))


def lesion_area_error(y_true, y_pred):
    """Predicted minus true lesion area, in pixels."""
    return float((np.asarray(y_pred["mask"]) > 0.0).sum() - (np.asarray(y_true["mask"]) > 0.5).sum())


class LesionScorer(EvaluatorBase):
    def get_eval_funcs(self):
        return {"mask_dice": mask_dice, "grade_correct": grade_correct, "area_error": lesion_area_error}
