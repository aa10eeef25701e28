from __future__ import annotations

import json

import pytest
import torch

from robusttrain.callbacks import Callback, CallbackError, CallbackList, build_callbacks, list_callbacks
from robusttrain.types import Batch, TrainState


class Recorder(Callback):
    def __init__(self, tag: str, order: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tag, self.calls = tag, []
        self.order = order  # type: ignore[misc]

    @property
    def state_key(self) -> str:
        return self.tag

    def on_batch_start(self, state: TrainState, batch: Batch) -> Batch:
        self.calls.append("batch")
        return batch.replace(images=batch.images + 1)

    def on_loss(self, state, batch, outputs, losses):
        self.calls.append("loss")
        return losses * 2

    def on_step_end(self, state: TrainState) -> None:
        self.calls.append("step")

    def state_dict(self) -> dict:
        return {"calls": list(self.calls)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.calls = list(state_dict["calls"])


def _batch() -> Batch:
    return Batch(images=torch.zeros(2, 3, 4, 4), targets=torch.tensor([0, 1]), indices=torch.tensor([5, 6]))


def test_hooks_chain_in_order_and_disabled_callbacks_are_skipped() -> None:
    late, early, off = Recorder("late", order=5), Recorder("early", order=-1), Recorder("off", enabled=False)
    callbacks = CallbackList([late, off, early])
    assert [cb.state_key for cb in callbacks.callbacks] == ["early", "off", "late"]
    state = TrainState()
    batch = callbacks.on_batch_start(state, _batch())
    assert torch.equal(batch.images, torch.full((2, 3, 4, 4), 2.0))
    losses = callbacks.on_loss(state, batch, torch.zeros(2, 2), torch.ones(2))
    assert torch.equal(losses, torch.full((2,), 4.0))
    callbacks.on_step_end(state)
    assert early.calls == late.calls == ["batch", "loss", "step"] and off.calls == []


def test_errors_name_the_callback_and_hook() -> None:
    class Broken(Callback):
        def on_step_end(self, state):
            raise RuntimeError("boom")

    class Scalar(Callback):
        def on_loss(self, state, batch, outputs, losses):
            return losses.mean()

    with pytest.raises(CallbackError, match="Broken.on_step_end failed: boom"):
        CallbackList([Broken()]).on_step_end(TrainState())
    with pytest.raises(CallbackError, match=r"Scalar.on_loss must return per-sample losses of shape \(2,\)"):
        CallbackList([Scalar()]).on_loss(TrainState(), _batch(), torch.zeros(2, 2), torch.ones(2))


def test_state_round_trip_is_json_and_keys_are_unique() -> None:
    first = CallbackList([Recorder("a"), Recorder("b")])
    first.on_step_end(TrainState())
    state = json.loads(json.dumps(first.state_dict()))
    second = CallbackList([Recorder("a"), Recorder("b")])
    second.load_state_dict(state)
    assert second.state_dict() == first.state_dict()
    with pytest.raises(ValueError, match=r"share state keys \['a'\]"):
        CallbackList([Recorder("a"), Recorder("a")])
    with pytest.raises(ValueError, match=r"not configured: \['b'\]"):
        CallbackList([Recorder("a")]).load_state_dict(state)


def test_build_callbacks_from_config_entries() -> None:
    assert {"audit", "background_randomization", "reweight"} <= set(list_callbacks())
    built = build_callbacks([{"name": "reweight", "alpha": 2.0}, {"name": "background_randomization", "p": 1.0}])
    assert [cb.state_key for cb in built.callbacks] == ["BackgroundRandomizationCallback", "ReweightCallback"]
    with pytest.raises(ValueError, match="unknown callback 'rewieght'"):
        build_callbacks([{"name": "rewieght"}])
    with pytest.raises(ValueError, match="callback 'reweight'.*alhpa"):
        build_callbacks([{"name": "reweight", "alhpa": 2.0}])
    with pytest.raises(ValueError, match="must be a mapping with a 'name'"):
        build_callbacks([{"alpha": 2.0}])
    with pytest.raises(ValueError, match="unknown background mode 'sawp'"):
        build_callbacks([{"name": "background_randomization", "mode": "sawp"}])
    with pytest.raises(ValueError, match=r"callback 'reweight': alpha must be a number >= 0, got 'four'"):
        build_callbacks([{"name": "reweight", "alpha": "four"}])
    with pytest.raises(ValueError, match=r"'methd'.*valid options: \['alpha', .*'source'"):
        build_callbacks([{"name": "reweight", "methd": "gradcam"}])
    with pytest.raises(ValueError, match="distinct key"):
        build_callbacks([{"name": "reweight"}, {"name": "reweight"}])
    two = build_callbacks([{"name": "reweight", "key": "soft", "alpha": 1.0}, {"name": "reweight", "key": "hard"}])
    assert sorted(cb.state_key for cb in two.callbacks) == ["hard", "soft"]
