"""Model audit: per image the map, the prediction, and the predictions on background-only / foreground-only views.

Views come from the true masks when the dataset has them, otherwise from the maps. A sample's
``background_reliance`` is the probability the background-only view still gives the full image's prediction;
a model that decides from the background keeps its decision when the object is removed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..eval.views import probabilities, view_probabilities
from ..maps import create_map_method
from ..transforms import region_from_maps
from ..transforms.compositing import composite, only_bg_tiled
from .records import Record, mean_or_none, view_records

MAP_SIZE = 16  # side of the per-image map kept in every record (uint8), for maps.npz


def other_label_donors(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each row, a random row of another label (the row itself when the batch has one label only)."""
    donors = torch.arange(len(labels))
    for i, label in enumerate(labels.tolist()):
        others = (labels != label).nonzero().flatten()
        if len(others):
            donors[i] = others[torch.randint(len(others), (1,), generator=generator)]
    return donors


def audit_batch(model: nn.Module, method: Callable, batch: dict[str, Any], threshold: float = 0.5) -> list[Record]:
    """Records for one batch from :func:`~robusttrain.audit.loading.read_batches` (on the model's device).

    Each record carries its map at 16x16 as uint8 (``map``), which :func:`split_maps` moves out of the records.
    With true masks, ``swap_correct`` says whether the object pasted on the object-free background of an image
    of another label (Only-BG-T fill) is still classified right; ``None`` without masks.
    """
    device = next(model.parameters()).device
    images, labels = batch["image"].to(device), batch["target"].to(device)
    full = probabilities(model, images)
    maps = method(images, full.argmax(dim=1))
    masks = batch.get("mask")
    regions = (masks.to(device) > 0.5).float() if masks is not None else region_from_maps(maps, threshold)
    on_bg, on_fg = view_probabilities(model, images, regions)
    records = view_records(batch["index"].tolist(), labels, full, on_bg, on_fg, regions, maps, masks,
                           "mask" if masks is not None else "map")
    swap_correct: list[bool | None] = [None] * len(records)
    if masks is not None:
        donors = other_label_donors(batch["target"], torch.Generator().manual_seed(int(batch["index"][0])))
        swapped = composite(images, regions, only_bg_tiled(images, regions)[donors.to(device)])
        swap_correct = (probabilities(model, swapped).argmax(1) == labels).tolist()
    small = F.interpolate(maps, size=(MAP_SIZE, MAP_SIZE), mode="area").mul(255).round().to(torch.uint8).cpu()
    for j, record in enumerate(records):
        record.update(path=batch["path"][j], swap_correct=swap_correct[j], map=small[j, 0].flatten().tolist())
    return records


def audit_model(
    model: nn.Module,
    batches: Iterable[dict[str, Any]],
    method: str = "gradcam",
    method_options: dict[str, Any] | None = None,
    on_records: Callable[[list[Record]], None] | None = None,
    total: int | None = None,
    progress: bool = True,
) -> list[Record]:
    """Audit every batch; ``on_records`` receives each batch's records as they are made (for resumable output)."""
    model.eval()
    map_method = create_map_method(method, model, **(method_options or {}))
    records: list[Record] = []
    with tqdm(total=total, desc="model audit", unit="img", disable=not progress) as bar:
        for batch in batches:
            made = audit_batch(model, map_method, batch)
            records.extend(made)
            if on_records is not None:
                on_records(made)
            bar.update(len(made))
    return records


def split_maps(records: list[Record]) -> tuple[list[Record], dict[str, np.ndarray]]:
    """Records without their ``map`` field, and ``{"ids": (N,), "maps": (N, 16, 16) uint8}`` for ``maps.npz``."""
    with_maps = [r for r in records if "map" in r]
    arrays = {"ids": np.array([r["id"] for r in with_maps], dtype=np.int64),
              "maps": np.array([r["map"] for r in with_maps], dtype=np.uint8).reshape(-1, MAP_SIZE, MAP_SIZE)}
    return [{k: v for k, v in r.items() if k != "map"} for r in records], arrays


def summarize_records(records: list[Record], num_classes: int, top: int = 8) -> dict[str, Any]:
    """Overall and per-class accuracy on each view, mean background reliance, the most reliant samples, and each
    class's share of the model's answers."""
    if not records:
        raise ValueError("no records to summarise: every sample was skipped or the dataset is empty")

    def stats(rows: list[Record]) -> dict[str, Any]:
        energies = [r["energy_in_mask"] for r in rows if r["energy_in_mask"] is not None]
        reliant = sorted(rows, key=lambda r: -r["background_reliance"])[:top]
        return {
            "count": len(rows),
            "accuracy": mean_or_none([float(r["correct"]) for r in rows]),
            "bg_only_accuracy": mean_or_none([float(r["bg_only_prediction"] == r["label"]) for r in rows]),
            "fg_only_accuracy": mean_or_none([float(r["fg_only_prediction"] == r["label"]) for r in rows]),
            "background_reliance": mean_or_none([r["background_reliance"] for r in rows]),
            "foreground_support": mean_or_none([r["foreground_support"] for r in rows]),
            "mean_energy_in_mask": mean_or_none(energies),
            "background_swap_accuracy": mean_or_none([float(r["swap_correct"]) for r in rows
                                               if r.get("swap_correct") is not None]),
            "most_background_reliant": [r["id"] for r in reliant],
        }

    by_class: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        by_class[record["label"]].append(record)
    answers = Counter(str(r["prediction"]) for r in records)
    return {"overall": stats(records), "chance": 1 / num_classes,
            "classes": {str(label): stats(rows) for label, rows in sorted(by_class.items())},
            "answer_shares": {label: count / len(records) for label, count in sorted(answers.items())}}


def example_maps(model: nn.Module, dataset: Any, ids: Iterable[int], method: str = "gradcam",
                 records: dict[int, Record] | None = None) -> list[tuple[Any, Any, Record]]:
    """(image, map, record) for the given sample ids, for the report's heat-map grids."""
    wanted = list(ids)
    position = {r.sample_id: i for i, r in enumerate(dataset.records)}
    items = [dataset[position[i]] for i in wanted if i in position]
    if not items:
        return []
    device = next(model.parameters()).device
    images = torch.stack([item["image"] for item in items]).to(device)
    maps = create_map_method(method, model)(images)
    return [(images[j].permute(1, 2, 0).cpu().numpy(), maps[j, 0].cpu().numpy(), (records or {})[wanted[j]])
            for j in range(len(items))]
