"""Map sources as part of the training step: each source is computed once per step and shared by every callback.

:class:`MapProvider` is driven by :class:`~robusttrain.callbacks.CallbackList`: before any callback sees the batch
it puts each needed source's maps on ``batch.maps[name]`` (computed on the images as the dataset gave them),
after the callbacks it arms the training-pass sources, and once the loop has the outputs it adds their fresh
maps. A source no callback reads this step is not computed (training-pass sources still fill their cache, so a
callback that starts later finds maps).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ..types import Batch, TrainState
from .registry import MAP_METHODS
from .source import MapSource

TRUE_MASKS = "masks"  # a reserved source name: the batch's true masks (an oracle), never a map method


def build_sources(section: Mapping[str, Mapping[str, Any]] | None, referenced: Iterable[str]) -> dict[str, MapSource]:
    """Sources declared in a config's ``maps`` section, plus one per referenced name that is a map method.

    A callback that names ``source: gradcam`` without a ``maps`` section gets the ``gradcam`` method with its
    defaults.

    Raises:
        ValueError: a malformed section, a reserved or unknown referenced name, or a bad source option.
    """
    section = section or {}
    if not isinstance(section, Mapping) or not all(isinstance(v, Mapping) for v in section.values()):
        raise ValueError(f"maps must map source names to option mappings, e.g. {{gradcam: {{method: gradcam}}}}, "
                         f"got {section!r}")
    if TRUE_MASKS in section:
        raise ValueError(f"map source name {TRUE_MASKS!r} is reserved for the batch's true masks")
    sources = {}
    for name, options in section.items():
        try:
            sources[name] = MapSource(name, **options)
        except TypeError as error:
            valid = [option for option in inspect.signature(MapSource).parameters if option != "name"]
            raise ValueError(f"map source {name!r}: {error}; valid options: {valid}") from None
    for name in sorted(set(referenced) - set(sources) - {TRUE_MASKS}):
        if name not in MAP_METHODS.list():
            raise ValueError(f"a callback reads map source {name!r}, which the maps section does not declare "
                             f"(declared: {sorted(sources)}) and which is not a map method {MAP_METHODS.list()}")
        sources[name] = MapSource(name, method=name)
    return sources


class MapProvider:
    """The step's map sources; see the module docstring for when each is computed."""

    def __init__(self, sources: Mapping[str, MapSource] | None = None) -> None:
        self.sources = dict(sources or {})

    def begin_step(self, state: TrainState, batch: Batch, wanted: Mapping[str, torch.Tensor | None]) -> Batch:
        """``batch`` with ``maps`` for the ``wanted`` sources (name -> the rows read, None for all): fresh
        before-step maps of those rows, cached maps otherwise."""
        for source in self.sources.values():
            source.release()
        found = {name: self.sources[name].before_step(state, batch, wanted[name])
                 for name in self.sources if name in wanted}
        return batch.replace(maps={**batch.maps, **found}) if found else batch

    def arm(self, state: TrainState, batch: Batch, referenced: set[str]) -> None:
        """Hook the training forward that follows for the training-pass sources that enabled callbacks read."""
        for name, source in self.sources.items():
            if source.from_training_pass and name in referenced:
                source.arm(state, batch)

    def after_forward(self, batch: Batch, outputs: torch.Tensor) -> Batch:
        """``batch`` with the training-pass sources' fresh maps of the forward that gave ``outputs``."""
        found = {}
        for name, source in self.sources.items():
            maps = source.after_forward(batch, outputs)
            if maps is not None:
                found[name] = maps
        return batch.replace(maps={**batch.maps, **found}) if found else batch

    def release(self) -> None:
        for source in self.sources.values():
            source.release()

    def state_dict(self) -> dict[str, Any]:
        return {name: source.state_dict() for name, source in self.sources.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unknown = sorted(set(state) - set(self.sources))
        if unknown:
            raise ValueError(f"checkpoint holds map sources that are not configured: {unknown}")
        for name, source in self.sources.items():
            if name in state:
                source.load_state_dict(state[name])
