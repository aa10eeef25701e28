"""The one object a user adds: the default (or any callbacks) in a plain loop, Lightning or the HF Trainer.

``Robust`` owns what a loop should not have to wire: the pass over the training data before the first step, the
sampler's weights each epoch, sample ids, the images' normalisation and the per-sample loss. A plain loop uses
:meth:`Robust.prepare` (accelerate's shape); :mod:`robusttrain.integrations` and ``robusttrain train`` drive the
same object through its loop methods (``begin``, ``start_epoch``, ``batch_start``, ``losses``, ``step_end``, ...).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from accelerate.utils import send_to_device
from torch import nn
from torch.utils.data import DataLoader

from ..callbacks import Callback, CallbackList, build_callbacks
from ..data import AdaptiveEpochSampler
from ..types import Batch, TrainState
from .formats import BatchFormat, Key, Normalization, PixelSpaceModel, find_normalization
from .loader import RobustLoader
from .losses import LossFn, PerSampleLoss

# The default callbacks: configs/callbacks/default.yaml says the same (a test keeps them equal).
DEFAULT_CALLBACKS: tuple[dict[str, Any], ...] = (
    {"name": "minority_resampling", "mix": 0.5, "mix_below": 0.04, "second_look": 0.5},)


def make_callbacks(callbacks: Sequence[Mapping[str, Any] | Callback] | CallbackList | None,
                   maps: Mapping[str, Mapping[str, Any]] | None) -> CallbackList:
    """A :class:`CallbackList` from config entries, callback objects or both (None: the default)."""
    if isinstance(callbacks, CallbackList):
        return callbacks
    entries = list(DEFAULT_CALLBACKS if callbacks is None else callbacks)
    built = [e if isinstance(e, Callback) else build_callbacks([e]).callbacks[0] for e in entries]
    return CallbackList(built, maps)


class Criterion:
    """``criterion(outputs, targets) -> loss``: the user's loss per sample, through the callbacks' loss hook, then
    averaged. Made by :meth:`Robust.criterion` / :meth:`Robust.prepare`."""

    def __init__(self, robust: Robust, loss: nn.Module | LossFn | None) -> None:
        self.robust, self.per_sample = robust, PerSampleLoss(loss)

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.robust.losses(outputs, targets, self.per_sample).mean()


class Robust:
    """The default robusttrain callbacks (or yours) in your own training, in one object.

    Args:
        callbacks: config entries (``[{"name": "reweight", "alpha": 4}]``), callback objects, or a ready
            :class:`CallbackList`; None: the default (label-free minority resampling, :data:`DEFAULT_CALLBACKS`).
        maps: the map sources the callbacks read (``{"gradcam": {"method": "gradcam"}}``).
        loss: the per-sample loss of :meth:`losses` where no criterion is given (None: cross-entropy over class
            labels); a ``torch.nn`` loss is used with ``reduction="none"``.
        mean: the per-channel mean the loader's images were normalised with (None: a torchvision
            ``Normalize`` in the dataset's transform, else images in [0, 1]).
        std: the per-channel standard deviation, with ``mean``.
        image_key: where a batch holds its images (a position in tuples, a key in dicts; None: found by name,
            or position 0).
        target_key: where it holds the targets (None: found by name, or position 1).
        mask_key: where it holds object masks, if anywhere (None: ``mask`` when present).
        group_key: where it holds group ids, if anywhere (None: ``group`` when present).
        seed: seed of the sampler's draws.
        data_pass: the training set without augmentation (same samples, same order) for the pass before training;
            None: the training set as the loader reads it.
    """

    def __init__(self, callbacks: Sequence[Mapping[str, Any] | Callback] | CallbackList | None = None,
                 maps: Mapping[str, Mapping[str, Any]] | None = None, *, loss: nn.Module | LossFn | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 image_key: Key | None = None, target_key: Key | None = None, mask_key: Key | None = None,
                 group_key: Key | None = None, seed: int = 0, data_pass: Any = None) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.callbacks = make_callbacks(callbacks, maps)
        given = Normalization(tuple(mean), tuple(std)) if mean is not None or std is not None else None
        self.normalization_given = given is not None
        self.format = BatchFormat(image_key, target_key, mask_key, group_key, given)
        self.per_sample = PerSampleLoss(loss)
        self.seed, self.data_pass = seed, data_pass
        self.state = TrainState()
        self.sampler: AdaptiveEpochSampler | None = None
        self.current: Batch | None = None  # the batch of this step, after the callbacks' batch hook
        self.model: nn.Module | None = None
        self.call: Any = None
        self.begun = self.epoch_open = False
        self.hooked = False  # this step's losses passed the callbacks' loss hook

    # --- for a plain loop -------------------------------------------------------------------------------------
    def prepare(self, *objects: Any, epochs: int | None = None) -> Any:
        """Your model, optimizer, training loader and loss, each returned ready (in the order given): the loader
        re-made to draw with robusttrain's sampler, the loss as a :class:`Criterion`; the model and optimizer are
        returned as they are (robusttrain reads the model and counts the optimizer's steps). ``epochs`` gives the
        run's length to callbacks that start at a fraction of it."""
        kinds = {"model": [], "optimizer": [], "loader": [], "loss": []}
        for item in objects:
            kinds[_kind(item)].append(item)
        for kind, found in kinds.items():
            if len(found) > 1:
                hint = "; pass a custom loss module as robust.criterion(loss)" if kind == "model" else ""
                raise ValueError(f"prepare got {len(found)} objects taken for the {kind}{hint}")
        if not kinds["loader"] or not kinds["optimizer"]:
            raise ValueError("prepare needs the training DataLoader and the optimizer (robusttrain draws the samples "
                             "and counts the optimizer's steps); the model and the loss are optional")
        loader = self.loader(kinds["loader"][0])
        if kinds["model"]:
            self.attach(kinds["model"][0])
        self.count_steps(kinds["optimizer"][0])
        if epochs is not None:
            self.state.total_steps = epochs * len(loader)
        out = [loader if _kind(o) == "loader" else self.criterion(o) if _kind(o) == "loss" else o for o in objects]
        return out[0] if len(out) == 1 else tuple(out)

    def loader(self, loader: DataLoader) -> RobustLoader:
        """``loader`` re-made to draw with robusttrain's sampler and pass each batch through the callbacks."""
        if not isinstance(loader, DataLoader):
            raise ValueError(f"robusttrain needs the training data as a torch DataLoader, got {type(loader).__name__}")
        if not self.normalization_given:
            self.format.normalization = find_normalization(loader.dataset) or Normalization()
            self.expose_model()
        return RobustLoader(self, loader)

    def criterion(self, loss: nn.Module | LossFn | None = None) -> Criterion:
        """``loss`` (None: this object's loss) as a criterion whose per-sample values pass the callbacks' loss
        hook (reweighting, extra terms) before the mean."""
        return Criterion(self, loss if loss is not None else self.per_sample.fn)

    def count_steps(self, optimizer: torch.optim.Optimizer) -> None:
        """Call :meth:`step_end` after each ``optimizer.step()``."""
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"expected a torch optimizer, got {type(optimizer).__name__}")
        self.state.optimizer = optimizer
        optimizer.register_step_post_hook(lambda *_: self.step_end())

    # --- the loop's steps (used by RobustLoader, robusttrain train and the integrations) ----------------------
    def attach(self, model: nn.Module, call: Any = None) -> None:
        """The model the map methods explain, seen from [0, 1] images (``call(model, inputs)`` for models whose
        forward takes other arguments)."""
        self.model, self.call = model, call
        self.expose_model()

    def expose_model(self) -> None:
        """``state.model``: the attached model itself when it takes [0, 1] images, else wrapped to take them."""
        if self.model is None:
            return
        plain = self.format.normalization.mean is None and self.call is None
        self.state.model = self.model if plain else PixelSpaceModel(self.model, self.format, self.call)

    def make_sampler(self, size: int) -> AdaptiveEpochSampler:
        """The sampler of the training set (``size`` samples), made once."""
        if self.sampler is None:
            self.sampler = AdaptiveEpochSampler(size, seed=self.seed)
            self.sampler.set_epoch(self.state.epoch)  # a restored state's epoch
        elif self.sampler.num_samples != size:
            raise ValueError(f"this Robust already draws from {self.sampler.num_samples} samples, not {size}: "
                             "use one Robust per training set")
        return self.sampler

    @staticmethod
    def process() -> tuple[int, int]:
        """This process's rank and the number of processes (torch.distributed), ``(0, 1)`` alone."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def begin(self, data_pass: Iterable[tuple[Any, torch.Tensor]] | None = None) -> None:
        """Once, before the first step: the callbacks' setup and, where one wants it, the pass over the training
        data (``(batch, ids)`` pairs; read only if wanted). A resumed run whose callbacks are restored makes none."""
        if self.begun:
            return
        rank, world = self.process()
        self.state.is_main_process, self.state.world_size = rank == 0, world
        batches = iter(data_pass or ())
        first = next(batches, None)
        if first is not None:
            self.check(*first)  # refused before any pass or step when the data or model cannot serve a callback
        self.callbacks.setup(self.state)
        rest = itertools.chain([first] if first is not None else [], batches)
        self.callbacks.observe_data(self.state, (self.read(raw, ids) for raw, ids in rest))
        self.begun = True

    def check(self, raw: Any, ids: torch.Tensor) -> None:
        """The callbacks' check of a first batch (``ValueError`` when this data or model cannot serve them)."""
        self.callbacks.check(self.state, self.read(raw, ids))

    def start_epoch(self, epoch: int, base_weights: torch.Tensor | None = None) -> None:
        """The callbacks' epoch start and this epoch's draw weights (``base_weights``, e.g. a weights file, times
        the callbacks'), set on the sampler before its draws."""
        if self.epoch_open:
            self.end_epoch()
        self.state.epoch = epoch
        self.callbacks.on_epoch_start(self.state)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
            wanted = self.callbacks.sampling_weights(self.state, range(self.sampler.num_samples))
            if wanted is not None and base_weights is not None:
                wanted = base_weights * wanted
            self.sampler.set_weights(base_weights if wanted is None else wanted)
        self.epoch_open = True

    def read(self, raw: Any, ids: torch.Tensor) -> Batch:
        """The user's batch as the library's :class:`Batch` (images in [0, 1], ids from the loader)."""
        return self.format.read(raw, ids)

    def batch_start(self, batch: Batch) -> Batch:
        """The callbacks' batch hook (blends, swaps); the result is this step's batch."""
        self.current = self.callbacks.on_batch_start(self.state, batch)
        return self.current

    def apply(self, raw: Any, ids: torch.Tensor) -> Any:
        """``raw`` after the callbacks' batch hook, in the user's structure."""
        return self.format.write(raw, self.batch_start(self.read(raw, ids)))

    def losses(self, outputs: torch.Tensor, targets: torch.Tensor | None = None,
               loss: PerSampleLoss | None = None) -> torch.Tensor:
        """Per-sample losses ``(B,)`` of this step's batch after the callbacks' loss hook."""
        return self.loss_hook(outputs, self.raw_losses(outputs, targets, loss))

    def raw_losses(self, outputs: torch.Tensor, targets: torch.Tensor | None = None,
                   loss: PerSampleLoss | None = None) -> torch.Tensor:
        """Per-sample losses ``(B,)`` of this step's batch (its own targets unless given), before any callback."""
        batch = self.current
        if batch is None:
            raise ValueError("no batch to compute the loss of: iterate the loader that robust.prepare returned")
        if len(outputs) != len(batch):
            raise ValueError(f"the loss got {len(outputs)} outputs, the loader's batch has {len(batch)} samples: "
                             "compute the loss of each batch as the loader gives it")
        return (loss or self.per_sample)(outputs, batch.targets if targets is None else targets)

    def loss_hook(self, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """The callbacks' loss hook on this step's per-sample losses (reweighting, extra terms)."""
        self.hooked = True
        return self.callbacks.on_loss(self.state, self.current, outputs, losses)

    def changes_losses(self) -> bool:
        """Whether an enabled callback has a loss hook (then every step's loss must pass through it)."""
        return bool(self.loss_changers())

    def loss_changers(self) -> list[str]:
        """The enabled callbacks whose loss hook changes the per-sample loss."""
        return [cb.state_key for cb in self.callbacks.callbacks
                if cb.enabled and cb.changes_loss and type(cb).on_loss is not Callback.on_loss]

    def step_end(self, global_step: int | None = None) -> None:
        """After an optimizer step: the step count (``global_step`` from the loop, else one more) and the hook."""
        if not self.hooked and self.current is not None and self.changes_losses():
            raise ValueError(f"{', '.join(self.loss_changers())} change the per-sample loss, but this step's loss "
                             "did not pass through them: compute it with robust.criterion(loss)(outputs, targets)")
        self.hooked = False
        self.state.global_step = self.state.global_step + 1 if global_step is None else global_step
        self.callbacks.on_step_end(self.state)

    def end_epoch(self) -> None:
        if self.epoch_open:
            self.callbacks.on_epoch_end(self.state)
            self.epoch_open = False

    def end(self) -> None:
        """After training: the callbacks' teardown (hooks released)."""
        self.callbacks.teardown(self.state)

    def to_device(self, raw: Any) -> Any:
        """``raw`` on the attached model's device (map methods run the model on the batch)."""
        model = self.state.model
        parameter = next(model.parameters(), None) if model is not None else None
        if parameter is None or parameter.device.type == "cpu":
            return raw
        return send_to_device(raw, parameter.device)

    def decisions(self) -> dict[str, dict[str, Any]]:
        """What each callback decided about this run (e.g. the default's estimate and flags)."""
        return self.callbacks.decisions()

    def state_dict(self) -> dict[str, Any]:
        """The callbacks' state (flags, weights, caches) and the step and epoch counts, as plain data."""
        return {"callbacks": self.callbacks.state_dict(), "global_step": self.state.global_step,
                "epoch": self.sampler.epoch if self.sampler is not None else self.state.epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`: a resumed run makes no second data pass."""
        self.callbacks.load_state_dict(state["callbacks"])
        self.state.global_step, self.state.epoch = int(state["global_step"]), int(state["epoch"])
        if self.sampler is not None:
            self.sampler.set_epoch(self.state.epoch)


def _kind(item: Any) -> str:
    """What ``prepare`` takes ``item`` for."""
    if isinstance(item, DataLoader):
        return "loader"
    if isinstance(item, torch.optim.Optimizer):
        return "optimizer"
    if isinstance(item, nn.modules.loss._Loss) or (callable(item) and not isinstance(item, nn.Module)):
        return "loss"
    if isinstance(item, nn.Module):
        return "model"
    raise ValueError(f"prepare takes a model, an optimizer, a DataLoader and a loss, got {type(item).__name__}")
