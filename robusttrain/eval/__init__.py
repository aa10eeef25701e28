"""Evaluation: group robustness (average / worst-group accuracy) and IN-9 background variants (BG-Gap)."""

from ..transforms.compositing import (
    bounding_boxes,
    composite,
    no_fg,
    only_bg_black,
    only_bg_tiled,
    only_fg,
)
from .evaluate import background_pool, evaluate_groups, evaluate_in9_folders, evaluate_variants, predict
from .groups import group_accuracy
from .localization import centre_maps, deletion_insertion, energy_in_mask, mask_iou, pointing_game
from .noise import add_noise
from .report import group_table, results_table, table_rows, write_tables_csv
from .sanity import cascading_randomization, map_similarity
from .variants import VARIANTS, make_variants

__all__ = [
    "VARIANTS",
    "add_noise",
    "background_pool",
    "cascading_randomization",
    "centre_maps",
    "deletion_insertion",
    "energy_in_mask",
    "mask_iou",
    "map_similarity",
    "pointing_game",
    "bounding_boxes",
    "composite",
    "evaluate_groups",
    "evaluate_in9_folders",
    "evaluate_variants",
    "group_accuracy",
    "group_table",
    "make_variants",
    "no_fg",
    "only_bg_black",
    "only_bg_tiled",
    "only_fg",
    "predict",
    "results_table",
    "table_rows",
    "write_tables_csv",
]
