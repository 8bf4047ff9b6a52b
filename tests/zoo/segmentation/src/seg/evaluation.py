from aimed import EvaluatorBase

from .overlap import area_error, binarize, dice, iou


class OverlapEvaluator(EvaluatorBase):
    """Dice / IoU per case. y_true: (H, W, 1) mask, y_pred: (H, W, 1) probabilities."""

    def _set_defaults(self):
        self.threshold = 0.5

    def _load_params(self, config):
        self.threshold = float(config.evaluator.get("threshold", self.threshold))

    def get_eval_funcs(self):
        t = self.threshold

        def dice_score(y_true, y_pred):
            return dice(binarize(y_true, 0.5), binarize(y_pred, t))

        def iou_score(y_true, y_pred):
            return iou(binarize(y_true, 0.5), binarize(y_pred, t))

        def lesion_area_error(y_true, y_pred):
            return area_error(binarize(y_true, 0.5), binarize(y_pred, t))

        return {"dice": dice_score, "iou": iou_score, "area_error": lesion_area_error}
