from .seg import dice_bce, soft_dice_per_image

__all__ = ["dice_bce", "soft_dice_per_image"]
