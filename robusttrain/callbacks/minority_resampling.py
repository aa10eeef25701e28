"""The default callback: resample the label-free minority estimate, and blend it where it is a handful.

Before the first step the callback sees the un-augmented training set once (:meth:`CallbackList.observe_data`) and
keeps a thumbnail of each image; the network estimate (:mod:`robusttrain.estimate.network`) then says whether
something other than the object predicts the label and flags the samples it confidently gets wrong. From the first
epoch on, flagged and unflagged samples of each label are *drawn* with equal mass through the loop's sampler
(:meth:`CallbackList.sampling_weights`): drawn, not loss-weighted, so each repeat is a fresh augmentation and no
batch's loss hinges on one sample. Where the flagged share is under ``mix_below``, ``mix`` of each batch is also
blended with an image of its label from the other side of the estimate (LISA's intra-label mixup), so a handful of
flagged images lends its backgrounds to many. Without bias it says so in one line and asks for no weights: the run
is plain ERM while a *second look* judges the user's model's own predictions on each training sample, as training
met them, by the same rule at each epoch end (:mod:`robusttrain.estimate.model_look`) until ``second_look`` of the
run is done; a shortcut the model learned in those passes turns resampling on from the next epoch, in one more
line. Class labels only: no groups, masks or maps. How the options were chosen:
research/history.md.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ..estimate import (
    ESTIMATE,
    background_features,
    balanced_weights,
    estimate_minority_colour,
    estimate_minority_network,
    judge_model_predictions,
    thumbnails,
)
from ..types import Batch, TrainState
from .base import Callback, check_class_labels
from .consumer import check_unit, step_generator
from .registry import CALLBACKS

NAME = "minority_resampling"
ESTIMATES = ("network", "colour")
LOOK_COVERAGE = 0.9  # the second look judges the model only when its outputs were seen for this share of the samples
BLIND_TO = {"network": "a shortcut that a network learns only after a few passes over the data",
            "colour": "layout, texture, small marks or context next to the object"}


def decision_line(summary: dict[str, Any]) -> str:
    """What the estimate found and what training does about it, in one line (from
    ``MinorityResamplingCallback.summary``); after a second look, what that found too."""
    subject = summary["looked_at"] if summary["estimate"] == "network" else f"a probe on {summary['looked_at']}"
    figures = (f"{subject} predicts the label with {100 * summary['estimate_accuracy']:.1f}% "
               f"accuracy vs {100 * summary['chance']:.1f}% chance (margin {100 * summary['margin']:.1f})")
    if summary["biased"]:
        blended = (f"; {100 * summary['mix']:.0f}% of drawn images blended with one of their label from the other side "
                   "of the estimate" if summary.get("mix") else "")
        if summary.get("no_blends"):
            blended = f"; no blends: {summary['no_blends']}"
        return (f"{NAME}: biased: {figures}; {summary['flagged']} of {summary['samples']} samples flagged as "
                f"the minority and drawn as often, per label, as the rest{blended}")
    if summary.get("second_look"):
        return f"{NAME}: no bias found before training: {figures}. {second_look_line(summary)}"
    if summary.get("second_look_at"):
        return (f"{NAME}: no bias found: {figures}; training as plain ERM (no resampling) "
                f"while a second look at the model's own mistakes watches each epoch (until "
                f"{100 * summary['second_look_at']:g}% of the run)")
    return (f"{NAME}: no bias found: {figures}; training as plain ERM (no "
            f"resampling). This check does not see {BLIND_TO[summary['estimate']]}")


def second_look_line(summary: dict[str, Any]) -> str:
    """What the second look at the model's own predictions found and what training does now, in one line."""
    look = summary["second_look"]
    if not look["made"]:
        return (f"{NAME}: no second look: the model's outputs reached {NAME} for {look['seen']} of "
                f"{look['samples']} training samples by epoch {look['epoch']} (its loss must pass through "
                "robust.criterion); training stays plain ERM")
    figures = (f"the model gets {100 * look['accuracy']:.1f}% of {look['seen']} training samples right vs "
               f"{100 * look['chance']:.1f}% chance, {100 * look['sure_mistakes']:.0f}% of its {look['mistakes']} "
               "mistakes near-certain")
    if not look["biased"]:
        return f"{NAME}: second look after epoch {look['epoch']}: {figures}: no shortcut seen; training stays plain ERM"
    blended = (f"; {100 * summary['mix']:.0f}% of drawn images blended with one of their label from the other side"
               if summary.get("mix") else "")
    return (f"{NAME}: second look after epoch {look['epoch']}: {figures}: biased; {look['flagged']} samples flagged "
            f"as the minority and drawn as often, per label, as the rest from epoch {look['epoch'] + 1} on{blended}")


@CALLBACKS.register(NAME)
class MinorityResamplingCallback(Callback):
    """Per-sample draw weights from an out-of-fold estimate of the minority fitted before training (or after the
    first epoch when the loop makes no pass before training).

    Args:
        estimate: ``network`` (a small CNN trained briefly out of fold on the images) or ``colour`` (a linear probe
            on colour statistics of the border frame; cheaper, blind to non-colour shortcuts).
        max_weight: cap on a sample's draw weight (None: uncapped), against a handful of flagged samples taking
            a label's whole half.
        mix: probability that a drawn sample is blended with a sample of the batch that has its label and is on the
            other side of the estimate (flagged with unflagged), ``x = l * x + (1 - l) * partner``, ``l ~ U(0, 1)``,
            label kept: each flagged image lends its background to many images of its class instead of being seen
            alone (0: resampling only).
        mix_below: blend only when the estimate flags less than this share of the training samples (None: whenever
            it flags any); above it resampling alone already draws each flagged image only a few times per epoch.
        second_look: where the estimate before training finds no bias, judge the model's own predictions on the
            training samples at each epoch end until this fraction of the run is done (the first epoch end when the
            run's length is unknown); from the first that shows a shortcut, resample what the model is
            near-certainly wrong about (None: no second look). Needs the loss
            through robusttrain (``robust.criterion`` in Lightning).
        seed: seed of the estimate's fold split (and of the net's initialisation).
        attribute: for multi-label targets ``(B, A)`` of 0/1, the column used as the label (None: class labels
            ``(B,)``).
        probe: the former name of ``estimate`` (deprecated).
        **options: ``key``, ``enabled``.

    Attributes:
        summary: once fitted, what the estimate looked at, its accuracy, chance and margin, whether the split is
            biased, how many samples it flagged and the decision (in the callback's state_dict, saved with every
            checkpoint; empty before the fit).
        weights: sample id -> draw weight once fitted on a biased split (None before, and without bias: the loop
            then keeps its shuffle).
    """

    order = 0  # records backgrounds before any callback changes the batch
    changes_loss = False  # the loss hook only reads the model's outputs (the second look)

    def __init__(self, estimate: str = "network", max_weight: float | None = None, mix: float = 0.0,
                 mix_below: float | None = None, second_look: float | None = None, seed: int = 0,
                 attribute: int | None = None,
                 probe: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        if probe is not None:
            warnings.warn(f"{NAME}: option 'probe' is now 'estimate'", FutureWarning, stacklevel=2)
            estimate = probe
        if estimate not in ESTIMATES:
            raise ValueError(f"estimate must be one of {list(ESTIMATES)}, got {estimate!r}")
        if max_weight is not None and (isinstance(max_weight, bool) or not isinstance(max_weight, (int, float))
                                       or max_weight < 1):
            raise ValueError(f"max_weight must be a number >= 1 or null, got {max_weight!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        if attribute is not None and (isinstance(attribute, bool) or not isinstance(attribute, int) or attribute < 0):
            raise ValueError(f"attribute must be a column index >= 0 or null, got {attribute!r}")
        self.estimate, self.max_weight, self.seed, self.attribute = estimate, max_weight, seed, attribute
        self.mix = check_unit("mix", mix)
        self.mix_below = None if mix_below is None else check_unit("mix_below", mix_below)
        self.second_look = None if second_look is None else check_unit("second_look", second_look)
        self.predictions: dict[int, tuple[float, bool]] = {}  # sample id -> (label probability, right), as trained
        self.views: dict[int, torch.Tensor] = {}  # sample id -> thumbnail (network) or colour statistics (colour)
        self.labels: dict[int, int] = {}
        self.weights: dict[int, float] | None = None
        self.flagged: set[int] = set()  # sample ids of the estimated minority (empty without bias)
        self.mixed = 0  # rows blended so far
        self.summary: dict[str, Any] = {}
        self.served = False  # the loop asked for the weights (else they would be lost silently: warned)

    @property
    def fitted(self) -> bool:
        return bool(self.summary)

    def check(self, state: TrainState, batch: Batch) -> None:
        self.sample_ids(batch)
        self.labels_of(batch.targets)

    def wants_data_pass(self, state: TrainState) -> bool:
        return not self.fitted and not self.views

    def observe(self, state: TrainState, batch: Batch) -> None:
        self.record(batch)

    def observed(self, state: TrainState) -> None:
        if not self.views:
            raise ValueError(f"{NAME}: the pass before training gave no samples")
        self.fit(self.device_of(state))  # every process saw the whole training set: no gathering
        self.agree()
        self.announce(state)

    def on_batch_start(self, state: TrainState, batch: Batch) -> Batch:
        if not self.fitted:
            self.record(batch)
            return batch
        if self.summary.get("mix") and self.flagged:
            return self.blend(state, batch)
        return batch

    def blend(self, state: TrainState, batch: Batch) -> Batch:
        """Blend each chosen row with a random row of the batch that has its label and is on the other side of the
        estimate."""
        ids = self.sample_ids(batch)
        generator = step_generator(self.seed, state.global_step, salt=3)
        size, device = len(batch), batch.images.device
        chosen = torch.rand(size, generator=generator) < self.summary["mix"]
        scores = torch.rand(size, size, generator=generator)
        share = torch.rand(size, generator=generator)
        labels = self.labels_of(batch.targets).cpu()
        minority = torch.tensor([i in self.flagged for i in ids.tolist()])
        allowed = (labels[:, None] == labels[None, :]) & (minority[:, None] != minority[None, :])
        partners = torch.where(allowed, scores, -1.0).argmax(dim=1)
        chosen &= allowed.any(dim=1) & batch.unchanged_rows().cpu()
        if not chosen.any():
            return batch
        share = torch.where(chosen, share, 1.0).to(device=device, dtype=batch.images.dtype)[:, None, None, None]
        images = share * batch.images + (1 - share) * batch.images[partners.to(device)]
        self.mixed += int(chosen.sum())
        return batch.with_randomized(images, chosen.to(device))

    def record(self, batch: Batch) -> None:
        """Keep what the estimate looks at (a thumbnail, or colour statistics) and the label of each unchanged row, by
        sample id."""
        ids = self.sample_ids(batch)
        labels = self.labels_of(batch.targets).cpu()
        rows = batch.unchanged_rows().cpu()
        images = batch.images.detach()
        views = thumbnails(images, ESTIMATE.side) if self.estimate == "network" else background_features(images).cpu()
        for sample_id, label, view in zip(ids[rows].tolist(), labels[rows].tolist(),
                                          views[rows], strict=True):
            self.views[sample_id], self.labels[sample_id] = view.clone(), label

    @staticmethod
    def sample_ids(batch: Batch) -> torch.Tensor:
        """The batch's sample ids on the CPU; ``ValueError`` when the batch carries none."""
        if batch.indices is None:
            raise ValueError(f"{NAME} needs batch.indices (stable sample ids)")
        return batch.indices.cpu()

    def labels_of(self, targets: torch.Tensor) -> torch.Tensor:
        """The labels the estimate balances: the class labels, or the ``attribute`` column of multi-label targets."""
        if self.attribute is None:
            return check_class_labels(targets, NAME,
                                      "; for multi-label targets (B, A) set attribute to the column to balance")
        if targets.ndim != 2 or not self.attribute < targets.shape[1]:
            raise ValueError(f"{NAME}(attribute={self.attribute}) needs multi-label targets (B, A) with more "
                             f"than {self.attribute} columns, got shape {tuple(targets.shape)}")
        column = targets[:, self.attribute]
        if not ((column == 0) | (column == 1)).all():
            others = ", ".join(f"{v:g}" for v in column[(column != 0) & (column != 1)][:3].tolist())
            raise ValueError(f"{NAME}(attribute={self.attribute}): column {self.attribute} must hold 0/1 "
                             f"labels, got {others}")
        return column.long()

    def on_loss(self, state: TrainState, batch: Batch, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        if self.looking() and outputs.ndim == 2 and outputs.shape[1] > 1:
            ids = self.sample_ids(batch)
            labels = self.labels_of(batch.targets).to(outputs.device)
            probabilities = outputs.detach().float().softmax(1)
            own = probabilities.gather(1, labels[:, None]).squeeze(1).cpu()
            right = (probabilities.argmax(1) == labels).cpu()
            rows = batch.unchanged_rows().cpu()
            for sample_id, probability, correct in zip(ids[rows].tolist(), own[rows].tolist(), right[rows].tolist(),
                                                       strict=True):
                self.predictions[sample_id] = (probability, correct)
        return losses

    def looking(self) -> bool:
        """Whether the second look is still to come: fitted without bias, and not looked yet."""
        return (self.second_look is not None and self.fitted and not self.summary["biased"]
                and "second_look" not in self.summary)

    def on_epoch_end(self, state: TrainState) -> None:
        if self.looking():
            self.look_again(state, not state.total_steps or state.global_step >= self.second_look * state.total_steps)
            return
        if self.fitted:
            if self.weights is not None and not self.served:
                warnings.warn(f"{NAME} has sampling weights but the loop never asked for them: call "
                              "callbacks.sampling_weights(state, ids) at each epoch start and give them to the "
                              "sampler (AdaptiveEpochSampler.set_weights)", stacklevel=2)
                self.served = True  # once
            return
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            shards: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(shards, (self.views, self.labels))  # every rank fits on all
            for views, labels in shards:
                self.views.update(views)
                self.labels.update(labels)
        if self.views:
            self.fit(self.device_of(state))
            self.agree()
            self.announce(state)

    def look_again(self, state: TrainState, last: bool) -> None:
        """The second look: judge the model's predictions recorded as training met each sample in this epoch; when
        they show a shortcut (a model that learned one is near-certainly wrong where it points elsewhere), resample
        those mistakes from the next epoch; otherwise look again after the next epoch, and at the ``last`` epoch
        for it say that no shortcut was seen. A model still learning hesitates, so an early look that clears
        chance may not show yet what the model is about to rely on. Announced in one line."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            shards: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(shards, self.predictions)
            for predictions in shards:
                self.predictions.update(predictions)
        ids = sorted(i for i in self.labels if i in self.predictions)
        look: dict[str, Any] = {"made": len(ids) >= LOOK_COVERAGE * len(self.labels), "epoch": state.epoch + 1,
                                "seen": len(ids), "samples": len(self.labels)}
        if not look["made"] and not last:
            self.predictions.clear()
            return
        if look["made"]:
            labels = torch.tensor([self.labels[i] for i in ids])
            probability = torch.tensor([self.predictions[i][0] for i in ids])
            correct = torch.tensor([self.predictions[i][1] for i in ids])
            found = judge_model_predictions(labels, correct, probability, int(max(self.labels.values())) + 1,
                                            ESTIMATE)
            if not last and not found.biased:
                self.predictions.clear()  # no shortcut in its mistakes yet: look again after the next epoch
                return
            look.update(accuracy=found.accuracy, chance=found.chance, margin=found.margin, mistakes=found.mistakes,
                        sure_mistakes=found.sure, biased=found.biased, flagged=int(found.flagged.sum()))
            if found.biased:
                self.resample(ids, labels, found.flagged)
                self.summary.update(self.blends(len(ids)),
                                    decision="resample the minority of the model's own near-certain mistakes from "
                                             f"epoch {look['epoch'] + 1} on")
        self.predictions.clear()
        self.summary["second_look"] = look
        self.agree()
        if state.is_main_process:
            print(second_look_line(self.summary), flush=True)

    def agree(self) -> None:
        """With several processes, every one takes the main process's estimate (a net trained on a GPU need not
        come out bit-identical on each, and the sampler's weights must be one)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            decided = [(self.weights, self.flagged, self.summary)]
            torch.distributed.broadcast_object_list(decided, src=0)
            self.weights, self.flagged, self.summary = decided[0]

    def announce(self, state: TrainState) -> None:
        """The decision in one line on the main process's console."""
        if state.is_main_process:
            print(decision_line(self.summary), flush=True)

    @staticmethod
    def device_of(state: TrainState) -> torch.device:
        """Where the network estimate trains: the model's device (CPU without a model)."""
        parameter = next(state.model.parameters(), None) if state.model is not None else None
        return parameter.device if parameter is not None else torch.device("cpu")

    def fit(self, device: torch.device | str = "cpu") -> None:
        """Fit the estimate on the recorded views and set ``weights`` (after the pass before training, or at the
        end of the first epoch)."""
        ids = sorted(self.views)
        labels = torch.tensor([self.labels[i] for i in ids])
        views, num_classes = torch.stack([self.views[i] for i in ids]), int(labels.max()) + 1
        if self.estimate == "network":
            found = estimate_minority_network(views, labels, num_classes, self.seed, device, ESTIMATE)
        else:
            found = estimate_minority_colour(views, labels, num_classes, self.seed)
        self.weights, self.flagged = None, set()
        if found.biased:
            self.resample(ids, labels, found.flagged)
        blends = self.blends(len(ids)) if found.biased else {"mix": 0.0, "no_blends": None, "flagged": 0}
        self.summary = {"estimate": self.estimate, "looked_at": found.looked_at, "samples": len(ids),
                        "estimate_accuracy": found.accuracy, "chance": found.chance, "margin": found.margin,
                        "sure_mistakes": found.sure_mistakes, "biased": found.biased, **blends,
                        "mix_below": self.mix_below, "second_look_at": self.second_look,
                        "decision": ("train as plain ERM" if not found.biased else "resample the flagged minority"
                                     + (" and blend it with its label's majority" if blends["mix"] else ""))}
        self.views.clear()

    def resample(self, ids: list[int], labels: torch.Tensor, flagged: torch.Tensor) -> None:
        """Flag ``ids[flagged]`` and give each label's flagged and unflagged samples equal draw mass."""
        self.flagged = {i for i, flag in zip(ids, flagged.tolist(), strict=True) if flag}
        weights = balanced_weights(labels, flagged)
        if self.max_weight is not None:
            weights = weights.clamp(max=self.max_weight)
        self.weights = dict(zip(ids, weights.tolist(), strict=True))

    def blends(self, samples: int) -> dict[str, Any]:
        """The blend share for the flagged set of a biased split of ``samples`` (``mix`` unless ``mix_below``
        rules it out, then why)."""
        flagged = len(self.flagged)
        mix = self.mix if self.mix_below is None or flagged < self.mix_below * samples else 0.0
        no_blends = (f"{100 * flagged / samples:.1f}% flagged, not under mix_below {100 * self.mix_below:g}%"
                     if self.mix and not mix else None)
        return {"mix": mix, "no_blends": no_blends, "flagged": flagged}

    def decision(self) -> dict[str, Any]:
        return {**self.summary, "blended": self.mixed} if self.summary.get("mix") else dict(self.summary)

    def sampling_weights(self, state: TrainState) -> dict[int, float] | None:
        self.served = True
        return self.weights

    def state_dict(self) -> dict[str, Any]:
        return {"views": {str(k): v for k, v in self.views.items()},
                "labels": {str(k): v for k, v in self.labels.items()},
                "weights": None if self.weights is None else {str(k): v for k, v in self.weights.items()},
                "flagged": sorted(self.flagged), "mixed": self.mixed, "summary": self.summary, "served": self.served,
                "predictions": {str(k): list(v) for k, v in self.predictions.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.views = {int(k): torch.as_tensor(v) for k, v in state_dict["views"].items()}
        self.labels = {int(k): v for k, v in state_dict["labels"].items()}
        weights = state_dict["weights"]
        self.weights = None if weights is None else {int(k): v for k, v in weights.items()}
        self.flagged = set(state_dict.get("flagged", []))
        self.mixed = int(state_dict.get("mixed", 0))
        self.summary = state_dict["summary"]
        self.served = bool(state_dict.get("served", False))
        self.predictions = {int(k): (float(v[0]), bool(v[1])) for k, v in state_dict.get("predictions", {}).items()}


@CALLBACKS.register("probe_weights")
class ProbeWeightCallback(MinorityResamplingCallback):
    """The former name of ``minority_resampling`` (deprecated): the same callback, with a FutureWarning."""

    def __init__(self, **options: Any) -> None:
        warnings.warn(f"callback 'probe_weights' (ProbeWeightCallback) is now '{NAME}' (MinorityResamplingCallback)",
                      FutureWarning, stacklevel=2)
        super().__init__(**options)

    @property
    def state_key(self) -> str:
        return self.key or MinorityResamplingCallback.__qualname__
