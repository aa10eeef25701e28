"""Audit during training: per-sample records of what the model attends to and what each view predicts.

For the samples whose map source has a map this step, a record (the format of ``robusttrain audit``'s model
audit, :mod:`robusttrain.audit.records`, plus ``epoch``, ``step`` and ``group``) holds the prediction, the
predictions on the background-only and foreground-only views (attended region removed / kept on the mean
colour), map statistics and, when the batch has true masks, the map's energy inside the mask. The audit runs
before any background randomization of the step (``order`` 5 < 10), so it records the dataset's sample, not a
composite. At each epoch end the latest record per sample is written to ``<output_dir>/audit/epoch_NNN.jsonl``
with a per-class summary and the flagged samples (the background alone predicts the label while the attended
region alone does not) in ``epoch_NNN_summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..audit.model_audit import summarize_records
from ..audit.records import Record, view_records
from ..eval.views import probabilities, view_probabilities
from ..transforms import region_from_maps
from ..types import Batch, TrainState
from .consumer import MapConsumer, check_unit
from .registry import CALLBACKS


@CALLBACKS.register("audit")
class AuditCallback(MapConsumer):
    """Per-sample background-reliance records, written every epoch.

    Args:
        output_dir: where ``audit/`` goes (default: ``state.output_dir``).
        flag_confidence: a sample is flagged when the background-only view gives its label at least this
            probability while the foreground-only view does not.
        threshold: map threshold for the attended region.
        **options: ``source``, ``start``, ``start_step``, ``seed``, ``key``, ``enabled`` (see
            :class:`MapConsumer`).
    """

    order = 5  # before background randomization (10): audit the samples as the dataset gives them

    def __init__(
        self, output_dir: str | None = None, flag_confidence: float = 0.8, threshold: float = 0.5, **options: Any
    ) -> None:
        super().__init__(**options)
        self.output_dir = output_dir
        self.flag_confidence = check_unit("flag_confidence", flag_confidence)
        self.threshold = check_unit("threshold", threshold)
        self.records: dict[int, Record] = {}
        self.num_classes = 0

    @torch.no_grad()
    def on_batch_start(self, state: TrainState, batch: Batch) -> Batch:
        if not self.started(state):
            return batch
        found = self.source_maps(batch)
        rows = found.available.nonzero().flatten()
        if len(rows) == 0:
            return batch
        images, maps = batch.images[rows], found.maps[rows]
        regions = region_from_maps(maps, self.threshold)
        full = probabilities(state.model, images)
        on_bg, on_fg = view_probabilities(state.model, images, regions)
        self.num_classes = full.shape[1]
        masks = batch.masks[rows] if batch.masks is not None else None
        ids = batch.indices[rows].tolist()
        for j, record in enumerate(view_records(ids, batch.targets[rows], full, on_bg, on_fg, regions, maps, masks)):
            group = None if batch.groups is None else int(batch.groups[rows[j]])
            self.records[record["id"]] = {**record, "epoch": state.epoch, "step": state.global_step, "group": group}
        return batch

    def summary(self, records: list[Record]) -> dict[str, Any]:
        """:func:`~robusttrain.audit.summarize_records`, plus the flagged (background-reliant) samples."""
        flagged = [r["id"] for r in records
                   if r["bg_only_p_label"] >= self.flag_confidence and r["fg_only_p_label"] < 0.5]
        return {"samples": len(records), **summarize_records(records, max(self.num_classes, 1)),
                "flagged": sorted(flagged)}

    def on_epoch_end(self, state: TrainState) -> None:
        records = list(self.records.values())
        if state.accelerator is not None and state.world_size > 1:
            from accelerate.utils import gather_object

            merged = {r["id"]: r for r in gather_object(records)}
            records = list(merged.values())
        records.sort(key=lambda r: r["id"])
        if not state.is_main_process or not records:
            return
        folder = Path(self.output_dir or state.output_dir or ".") / "audit"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"epoch_{state.epoch:03d}.jsonl", "w") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in records)
        (folder / f"epoch_{state.epoch:03d}_summary.json").write_text(json.dumps(self.summary(records), indent=2))

    def state_dict(self) -> dict[str, Any]:
        return {"records": [self.records[k] for k in sorted(self.records)], "num_classes": self.num_classes}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.records = {r["id"]: r for r in state_dict["records"]}
        self.num_classes = state_dict["num_classes"]
