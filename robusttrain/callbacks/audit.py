"""Audit during training: per-sample records of what the model attends to and what each view predicts.

For the samples that get maps (see :class:`MapSchedule`), each record holds the sample id, label,
prediction, the predictions on the background-only and foreground-only views (attended region removed /
kept on the mean colour), map statistics (share of the image attended, peak position) and, when the batch
has true masks, the map's energy inside the mask. The audit runs before any background randomization of the
step (``order`` 5 < 10), so it records the dataset's sample, not a composite. At each epoch end the latest
record per sample is written to ``<output_dir>/audit/epoch_NNN.jsonl`` with a per-class summary and the flagged
samples (the background alone predicts the label while the attended region alone does not) in
``epoch_NNN_summary.json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from ..eval.localization import energy_in_mask
from ..transforms import region_from_maps
from ..types import Batch, TrainState
from .maps import MapCallback
from .registry import CALLBACKS
from .views import probabilities, view_probabilities


@CALLBACKS.register("audit")
class AuditCallback(MapCallback):
    """Per-sample background-reliance records, written every epoch.

    Args:
        output_dir: where ``audit/`` goes (default: ``state.output_dir``).
        flag_confidence: a sample is flagged when the background-only view gives its label at least this
            probability while the foreground-only view does not.
        threshold: map threshold for the attended region.
        **map_options: map scheduling and state key (see :class:`MapCallback`).
    """

    order = 5  # before background randomization (10): audit the samples as the dataset gives them

    def __init__(
        self, output_dir: str | None = None, flag_confidence: float = 0.8, threshold: float = 0.5, **map_options: Any
    ) -> None:
        super().__init__(**map_options)
        self.output_dir, self.flag_confidence, self.threshold = output_dir, flag_confidence, threshold
        self.records: dict[int, dict[str, Any]] = {}

    @torch.no_grad()
    def on_batch_start(self, state: TrainState, batch: Batch) -> Batch:
        maps, available = self.schedule.maps(state, batch)
        rows = available.nonzero().flatten()
        if len(rows) == 0:
            return batch
        images, maps = batch.images[rows], maps[rows]
        regions = region_from_maps(maps, self.threshold)
        full = probabilities(state.model, images)
        on_bg, on_fg = view_probabilities(state.model, images, regions)
        labels = batch.targets[rows].long()
        energy = energy_in_mask(maps, batch.masks[rows]) if batch.masks is not None else None
        width = maps.shape[-1]
        peaks = maps.flatten(1).argmax(dim=1)
        for j, row in enumerate(rows.tolist()):
            label = int(labels[j])
            self.records[int(batch.indices[row])] = {
                "id": int(batch.indices[row]), "epoch": state.epoch, "step": state.global_step, "label": label,
                "group": None if batch.groups is None else int(batch.groups[row]),
                "prediction": int(full[j].argmax()), "p_label": float(full[j, label]),
                "bg_only_prediction": int(on_bg[j].argmax()), "bg_only_p_label": float(on_bg[j, label]),
                "fg_only_prediction": int(on_fg[j].argmax()), "fg_only_p_label": float(on_fg[j, label]),
                "attended_share": float(regions[j].mean()), "map_mean": float(maps[j].mean()),
                "peak_yx": [int(peaks[j]) // width, int(peaks[j]) % width],
                "energy_in_mask": None if energy is None else float(energy[j]),
            }
        return batch

    def summary(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Per-class accuracy on each view, mean energy in mask, and the flagged (background-reliant) samples."""
        by_class: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            by_class[record["label"]].append(record)
        classes = {}
        for label, rows in sorted(by_class.items()):
            energies = [r["energy_in_mask"] for r in rows if r["energy_in_mask"] is not None]
            classes[str(label)] = {
                "count": len(rows),
                "accuracy": sum(r["prediction"] == label for r in rows) / len(rows),
                "bg_only_accuracy": sum(r["bg_only_prediction"] == label for r in rows) / len(rows),
                "fg_only_accuracy": sum(r["fg_only_prediction"] == label for r in rows) / len(rows),
                "mean_energy_in_mask": sum(energies) / len(energies) if energies else None,
            }
        flagged = [r["id"] for r in records
                   if r["bg_only_p_label"] >= self.flag_confidence and r["fg_only_p_label"] < 0.5]
        return {"samples": len(records), "classes": classes, "flagged": sorted(flagged)}

    def on_epoch_end(self, state: TrainState) -> None:
        records = list(self.records.values())
        if state.accelerator is not None and state.world_size > 1:
            from accelerate.utils import gather_object

            merged = {r["id"]: r for r in gather_object(records)}
            records = list(merged.values())
        records.sort(key=lambda r: r["id"])
        if not state.is_main_process:
            return
        folder = Path(self.output_dir or state.output_dir or ".") / "audit"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"epoch_{state.epoch:03d}.jsonl", "w") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in records)
        (folder / f"epoch_{state.epoch:03d}_summary.json").write_text(json.dumps(self.summary(records), indent=2))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "records": [self.records[k] for k in sorted(self.records)]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.records = {r["id"]: r for r in state_dict["records"]}
