"""Hugging Face: the default (or any callbacks) in ``RobustTrainer``, a ``transformers.Trainer`` that draws its
samples through robusttrain.

The Trainer's sampler cannot be set from a ``TrainerCallback``, so, as libraries that change sampling do (TRL's
trainers), a documented subclass builds the training loader: robusttrain's sampler over the dataset as the Trainer
prepares it (unused columns removed), sample ids beside each batch, the pass over the data and the decision line
before the first step, the sampler's weights each epoch. ``compute_loss`` runs the callbacks' batch and loss hooks
(per-sample loss: ``Robust(loss=...)``, cross-entropy by default); evaluation batches get the plain loss. The
callbacks' state travels in the Trainer's checkpoints (``trainer_state.json``), so a resumed run makes no second
data pass. Images are un-normalised with the processor's ``image_mean`` / ``image_std`` unless ``Robust`` says.

Example:
    trainer = RobustTrainer(model=model, args=args, train_dataset=train, processing_class=processor)
    trainer.train()                                  # RobustTrainer(..., robust=Robust(callbacks=[...])) for others
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..plugin import ID_KEY, IndexedDataset, Normalization, Robust, WithIds, find_normalization

try:
    import transformers
    from transformers.trainer_callback import ExportableState
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Hugging Face integration needs transformers: pip install 'transformers>=4.44'") from error


def logits_of(outputs: Any) -> torch.Tensor:
    """A Hugging Face model's logits (``ModelOutput.logits``, or the first element)."""
    return outputs.logits if hasattr(outputs, "logits") else outputs[0]


def pixel_call(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """How map methods call a Hugging Face image model: ``model(pixel_values=images).logits``."""
    return logits_of(model(pixel_values=images))


class RobustTrainer(transformers.Trainer):
    """``transformers.Trainer`` with a :class:`~robusttrain.Robust` (see the module docstring).

    Args:
        *args: as ``transformers.Trainer``.
        robust: the object to run (None: ``Robust(seed=args.seed)``, the default callbacks).
        **kwargs: as ``transformers.Trainer``.
    """

    def __init__(self, *args: Any, robust: Robust | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.args.restore_callback_states_from_checkpoint:
            raise ValueError("leave TrainingArguments.restore_callback_states_from_checkpoint off: RobustTrainer "
                             "restores its callbacks' state itself on resume")
        self.robust = robust if robust is not None else Robust(seed=self.args.seed)
        self.loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean
        self.pass_data: tuple[Any, Any] | None = None  # (dataset, collate) of the training loader
        self.add_callback(RobustEvents(self))

    def get_train_dataloader(self) -> DataLoader:
        """The training loader: robusttrain's sampler over the prepared dataset, ids beside each batch."""
        if self.train_dataset is None:
            raise ValueError("Trainer: training requires a train_dataset.")
        dataset, collate = self.train_dataset, self.data_collator
        if type(dataset).__module__.startswith("datasets"):
            dataset = self._remove_unused_columns(dataset, description="training")
        else:
            collate = self._get_collator_with_removed_columns(collate, description="training")
        self.pass_data = (dataset, collate)
        robust, args = self.robust, self.args
        if not robust.normalization_given:
            robust.format.normalization = find_normalization(dataset) or processor_normalization(self) \
                or Normalization()
        options: dict[str, Any] = {"num_workers": args.dataloader_num_workers, "pin_memory": args.dataloader_pin_memory,
                                   "drop_last": args.dataloader_drop_last}
        if args.dataloader_num_workers:
            options.update(persistent_workers=args.dataloader_persistent_workers,
                           prefetch_factor=args.dataloader_prefetch_factor)
        loader = DataLoader(IndexedDataset(dataset), batch_size=self._train_batch_size,
                            sampler=robust.make_sampler(len(dataset)), collate_fn=WithIds(collate, ID_KEY), **options)
        return self.accelerator.prepare(loader)

    def data_pass(self) -> Iterator[tuple[Any, torch.Tensor]]:
        """The training set once, in order, as ``(batch, ids)``."""
        dataset, collate = self.pass_data
        if self.robust.data_pass is not None:
            dataset = self.robust.data_pass
        yield from DataLoader(IndexedDataset(dataset), batch_size=self._train_batch_size,
                              collate_fn=WithIds(collate), num_workers=self.args.dataloader_num_workers)

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if ID_KEY not in inputs:  # an evaluation batch: the Trainer's own loss
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        robust = self.robust
        ids = inputs.pop(ID_KEY)
        inputs = robust.apply(inputs, ids)
        target_key = robust.format.keys(inputs)[1]
        outputs = model(**{k: v for k, v in inputs.items() if k != target_key})
        loss = robust.losses(logits_of(outputs), inputs[target_key]).mean()
        return (loss, outputs) if return_outputs else loss


def processor_normalization(trainer: transformers.Trainer) -> Normalization | None:
    """The image processor's normalisation (``image_mean`` / ``image_std``, when it normalises)."""
    processor = getattr(trainer, "processing_class", None)
    processor = getattr(processor, "image_processor", processor)
    mean, std = getattr(processor, "image_mean", None), getattr(processor, "image_std", None)
    if mean is None or std is None or not getattr(processor, "do_normalize", True):
        return None
    return Normalization(tuple(mean), tuple(std))


class RobustEvents(transformers.TrainerCallback, ExportableState):
    """The Trainer's events, forwarded to its :class:`~robusttrain.Robust`; its state is exported with the
    Trainer's checkpoints (added by :class:`RobustTrainer`)."""

    def __init__(self, trainer: RobustTrainer) -> None:
        self.trainer = trainer

    @property
    def robust(self) -> Robust:
        return self.trainer.robust

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        robust = self.robust
        robust.attach(self.trainer.accelerator.unwrap_model(model or self.trainer.model), pixel_call)
        robust.state.total_steps, robust.state.output_dir = state.max_steps or None, args.output_dir
        saved = state.stateful_callbacks.get(type(self).__name__) if state.global_step > 0 else None
        if saved is not None:  # resumed from a checkpoint: the callbacks go on where they stopped
            robust.load_state_dict(saved["attributes"]["robust_state"])
        robust.begin(self.trainer.data_pass())

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.robust.start_epoch(int((state.epoch or 0) + 1e-6))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.robust.step_end(state.global_step)
        control.should_training_stop = control.should_training_stop or self.robust.state.should_stop

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.robust.end_epoch()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.robust.end()

    def state(self) -> dict[str, Any]:  # transformers.ExportableState
        return {"args": {}, "attributes": {"robust_state": self.robust.state_dict()}}
