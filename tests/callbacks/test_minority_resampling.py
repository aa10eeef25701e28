"""minority_resampling: the backgrounds (of the pass before training, else of the first epoch) flag the minority,
weights balance it, nothing when no bias."""

from __future__ import annotations

import pytest
import torch

from robusttrain.audit.dataset_audit import dataset_audit
from robusttrain.callbacks import CallbackError, CallbackList, MinorityResamplingCallback, build_callbacks
from robusttrain.callbacks.minority_resampling import decision_line
from robusttrain.data import AdaptiveEpochSampler
from robusttrain.types import Batch, TrainState


def _scenes(count: int, correlation: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A grey centre on a background whose colour (reddish / bluish) agrees with the label for a ``correlation``
    share of samples; returns images, labels and which samples are the minority."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 2
    minority = torch.rand(count, generator=generator) > correlation
    place = torch.where(minority, 1 - labels, labels)
    images = 0.3 + 0.2 * torch.rand(count, 3, 24, 24, generator=generator)
    images[:, 0] += 0.4 * (place == 0).float()[:, None, None]
    images[:, 2] += 0.4 * (place == 1).float()[:, None, None]
    images[:, :, 8:16, 8:16] = 0.5
    return images.clamp(0, 1), labels, minority


def _epoch(callback: MinorityResamplingCallback, state: TrainState, images, labels, batch: int = 32) -> None:
    for start in range(0, len(images), batch):
        rows = slice(start, start + batch)
        callback.on_batch_start(state, Batch(images=images[rows], targets=labels[rows],
                                             indices=torch.arange(len(images))[rows]))
    callback.on_epoch_end(state)
    state.epoch += 1


def test_the_minority_is_flagged_and_balanced_within_each_label() -> None:
    images, labels, minority = _scenes(400, correlation=0.9)
    callbacks, state = build_callbacks([{"name": "minority_resampling"}]), TrainState()
    callback = callbacks.callbacks[0]
    assert callbacks.sampling_weights(state, range(400)) is None  # nothing before the first epoch ends
    _epoch(callback, state, images, labels)
    assert callback.summary["biased"] and callback.summary["flagged"] == int(minority.sum())
    weights = callbacks.sampling_weights(state, range(400))
    for label in (0, 1):
        rows = labels == label
        assert weights[rows & minority].sum() == pytest.approx(float(weights[rows & ~minority].sum()))
    assert weights[minority].min() > 5 * weights[~minority].max()
    sampler = AdaptiveEpochSampler(400)
    sampler.set_weights(weights)
    drawn = torch.tensor(list(sampler))
    assert minority[drawn].float().mean() == pytest.approx(0.5, abs=0.08)  # half the draws from the minority
    restored = build_callbacks([{"name": "minority_resampling"}]).callbacks[0]
    restored.load_state_dict(callback.state_dict())
    assert restored.weights == callback.weights and restored.summary == callback.summary


def _marked_scenes(count: int, correlation: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grey noise with a small black-or-white bar anywhere, lying (place 0) or standing (place 1): the same ink and
    edges either way. The bar's colour and position say nothing of the label; its orientation agrees with the label
    for ``correlation``."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 2
    minority = torch.rand(count, generator=generator) > correlation
    place = torch.where(minority, 1 - labels, labels)
    images = 0.4 + 0.2 * torch.rand(count, 3, 32, 32, generator=generator)
    corners = torch.randint(0, 22, (count, 2), generator=generator)
    inks = (torch.rand(count, generator=generator) > 0.5).float()
    for i, ((top, left), ink) in enumerate(zip(corners.tolist(), inks.tolist(), strict=True)):
        if place[i] == 0:
            images[i, :, top + 4 : top + 7, left : left + 10] = ink
        else:
            images[i, :, top : top + 10, left + 4 : left + 7] = ink
    return images, labels, minority


def test_the_network_sees_a_mark_that_colour_statistics_miss(capsys: pytest.CaptureFixture) -> None:
    images, labels, minority = _marked_scenes(600, correlation=0.9)
    network, colour, state = MinorityResamplingCallback(), MinorityResamplingCallback(estimate="colour"), TrainState()
    _epoch(network, state, images, labels)
    _epoch(colour, TrainState(), images, labels)
    assert network.summary["biased"] and not colour.summary["biased"]
    flagged = torch.tensor([network.weights[i] for i in range(600)]) > 1
    precision = float((flagged & minority).sum() / flagged.sum())
    recall = float((flagged & minority).sum() / minority.sum())
    assert precision >= 0.7 and recall >= 0.7, (precision, recall)
    said = capsys.readouterr().out.strip().splitlines()
    assert said[0].startswith("minority_resampling: biased: a small CNN")
    assert "no bias found: a probe on colour statistics of the border frame" in said[1] and "small marks" in said[1]


@pytest.mark.parametrize("estimate", ["network", "colour"])
def test_no_bias_trains_as_plain_erm_says_so_and_bad_options_are_named(estimate: str,
                                                                       capsys: pytest.CaptureFixture) -> None:
    images, labels, _ = _scenes(400, correlation=0.5)
    callback, state = MinorityResamplingCallback(estimate=estimate), TrainState()
    _epoch(callback, state, images, labels)
    assert not callback.summary["biased"] and callback.summary["decision"] == "train as plain ERM"
    looked_at = {"network": "a small CNN trained briefly out of fold on the whole images (2 runs averaged)",
                 "colour": "colour statistics of the border frame"}[estimate]
    assert callback.summary["looked_at"] == looked_at
    # No weights at all: the loop keeps its shuffle (all-1 weights would switch it to draws with replacement).
    assert callback.weights is None and CallbackList([callback]).sampling_weights(state, range(400)) is None
    said = capsys.readouterr().out.strip().splitlines()
    subject = looked_at if estimate == "network" else f"a probe on {looked_at}"
    assert len(said) == 1 and f"no bias found: {subject} predicts the label" in said[0]
    assert "training as plain ERM" in said[0]
    assert not callback.wants_data_pass(state)  # decided: no second pass, no refit
    _epoch(callback, state, images, labels)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="max_weight must be"):
        MinorityResamplingCallback(max_weight=0.5)
    with pytest.raises(ValueError, match=r"estimate must be one of \['network', 'colour'\], got 'gradcam'"):
        MinorityResamplingCallback(estimate="gradcam")
    with pytest.raises(ValueError, match="needs batch.indices"):
        MinorityResamplingCallback().on_batch_start(TrainState(), Batch(images=images[:2], targets=labels[:2]))


def test_multi_label_targets_balance_the_named_column() -> None:
    images, labels, minority = _scenes(400, correlation=0.9)
    noise = torch.randint(0, 2, (400, 2), generator=torch.Generator().manual_seed(1))
    targets = torch.stack([noise[:, 0], labels, noise[:, 1]], dim=1).float()  # the label is column 1
    callback, state = MinorityResamplingCallback(attribute=1), TrainState()
    _epoch(callback, state, images, targets)
    assert callback.summary["biased"] and callback.summary["flagged"] == int(minority.sum())
    weights = torch.tensor([callback.weights[i] for i in range(400)])
    assert weights[minority].min() > 5 * weights[~minority].max()
    restored = MinorityResamplingCallback(attribute=1)
    restored.load_state_dict(callback.state_dict())
    assert restored.weights == callback.weights


@pytest.mark.parametrize(("options", "targets", "message"), [
    ({}, torch.zeros(2, 3), r"needs class labels \(B,\) of integers.*set attribute"),
    ({"attribute": 3}, torch.zeros(2, 3), r"attribute=3\) needs multi-label targets \(B, A\) with more than 3"),
    ({"attribute": 0}, torch.zeros(2, dtype=torch.long), r"attribute=0\) needs multi-label targets"),
    ({"attribute": 1}, torch.tensor([[0.0, 0.7], [1.0, 1.0]]), r"column 1 must hold 0/1 labels.*0\.7"),
])
def test_labels_that_do_not_fit_the_options_are_named(options, targets, message) -> None:
    batch = Batch(images=torch.rand(2, 3, 8, 8), targets=targets, indices=torch.arange(2))
    with pytest.raises(ValueError, match=message):
        MinorityResamplingCallback(**options).on_batch_start(TrainState(), batch)


def test_an_attribute_that_is_not_a_column_index_is_refused() -> None:
    for bad in (-1, 1.5, True, "y"):
        with pytest.raises(ValueError, match="attribute must be a column index"):
            MinorityResamplingCallback(attribute=bad)


def test_a_resumed_first_epoch_keeps_what_it_recorded() -> None:
    images, labels, minority = _scenes(400, correlation=0.9)
    first, state = MinorityResamplingCallback(), TrainState()
    first.on_batch_start(state, Batch(images=images[:200], targets=labels[:200], indices=torch.arange(200)))
    resumed = MinorityResamplingCallback()
    resumed.load_state_dict(first.state_dict())
    resumed.on_batch_start(state, Batch(images=images[200:], targets=labels[200:], indices=torch.arange(200, 400)))
    resumed.on_epoch_end(state)
    assert resumed.summary["flagged"] == int(minority.sum())


def test_weights_the_loop_never_asks_for_are_not_lost_silently() -> None:
    images, labels, _ = _scenes(200, correlation=0.9)
    callback, state = MinorityResamplingCallback(), TrainState()
    _epoch(callback, state, images, labels)
    with pytest.warns(UserWarning, match="never asked for them"):
        callback.on_epoch_end(state)


def test_the_pass_before_training_gives_weights_for_the_first_epoch_and_is_skipped_once_fitted() -> None:
    images, labels, minority = _scenes(400, correlation=0.9)
    callbacks, state = build_callbacks([{"name": "minority_resampling"}]), TrainState()
    batches = [Batch(images=images[i:i + 64], targets=labels[i:i + 64], indices=torch.arange(400)[i:i + 64])
               for i in range(0, 400, 64)]
    assert callbacks.wants_data_pass(state) and callbacks.observe_data(state, iter(batches))
    assert callbacks.callbacks[0].summary["flagged"] == int(minority.sum())
    weights = callbacks.sampling_weights(state, range(400))  # at the first epoch's start
    assert weights is not None and weights[minority].min() > 5 * weights[~minority].max()

    def must_not_be_read():
        raise AssertionError("the pass was iterated although no callback wanted it")
        yield

    resumed = build_callbacks([{"name": "minority_resampling"}])
    resumed.load_state_dict(callbacks.state_dict())  # a resumed run already has its weights
    assert not resumed.wants_data_pass(state) and not resumed.observe_data(state, must_not_be_read())
    assert not build_callbacks([]).observe_data(state, must_not_be_read())
    with pytest.raises(CallbackError, match="MinorityResamplingCallback.observed failed: .*gave no samples"):
        build_callbacks([{"name": "minority_resampling"}]).observe_data(state, iter([]))


def test_mix_blends_each_chosen_image_with_one_of_its_label_from_the_other_estimate() -> None:
    images, labels, minority = _scenes(400, correlation=0.9)
    callback, state = MinorityResamplingCallback(mix=0.5), TrainState()
    _epoch(callback, state, images, labels)
    assert callback.flagged == set(torch.nonzero(minority).flatten().tolist())
    rows = torch.cat([torch.nonzero(minority).flatten()[:16], torch.nonzero(~minority).flatten()[:48]])
    batch = Batch(images=images[rows], targets=labels[rows], indices=rows)
    rng_before = torch.get_rng_state()
    mixed = callback.on_batch_start(state, batch)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.equal(mixed.targets, batch.targets)  # both images have the label: it is kept
    changed = mixed.randomized
    assert 16 <= int(changed.sum()) <= 48 and callback.mixed == int(changed.sum())
    assert torch.equal(mixed.images[~changed], batch.images[~changed])
    for row in torch.nonzero(changed).flatten().tolist():
        own, new = batch.images[row].flatten(), mixed.images[row].flatten()
        partners = [j for j in range(len(rows))
                    if labels[rows[j]] == labels[rows[row]] and minority[rows[j]] != minority[rows[row]]]
        residuals = []
        for j in partners:  # new = l * own + (1 - l) * other: the best l leaves no residual for the partner
            other = batch.images[j].flatten()
            share = float(torch.dot(new - other, own - other) / torch.dot(own - other, own - other))
            residuals.append(float((new - other - share * (own - other)).abs().max()) if 0 <= share <= 1 else 1.0)
        assert min(residuals) < 1e-5
    assert callback.decision()["blended"] == callback.mixed
    assert "and blend it with its label's majority" in callback.summary["decision"]
    assert "50% of drawn images blended with one of their label" in decision_line(callback.summary)
    again = callback.on_batch_start(state, batch)  # replayable: a function of the seed and the step
    assert torch.equal(again.images, mixed.images)
    restored = MinorityResamplingCallback(mix=0.5)
    restored.load_state_dict(callback.state_dict())
    assert restored.flagged == callback.flagged and restored.mixed == callback.mixed
    alone = Batch(images=images[rows[16:]], targets=labels[rows[16:]], indices=rows[16:])
    assert callback.on_batch_start(state, alone) is alone  # no partner from the other estimate: unchanged
    for bad in (-0.1, 1.5, True, "half"):
        with pytest.raises(ValueError, match="mix must be a number in"):
            MinorityResamplingCallback(mix=bad)


def test_mix_changes_nothing_without_bias() -> None:
    images, labels, _ = _scenes(400, correlation=0.5)
    callback, state = MinorityResamplingCallback(mix=1.0), TrainState()
    _epoch(callback, state, images, labels)
    batch = Batch(images=images[:64], targets=labels[:64], indices=torch.arange(64))
    assert callback.on_batch_start(state, batch) is batch and callback.mixed == 0


def test_mix_below_blends_only_a_small_flagged_share() -> None:
    images, labels, minority = _scenes(400, correlation=0.9)
    share = float(minority.float().mean())
    rows = torch.cat([torch.nonzero(minority).flatten()[:16], torch.nonzero(~minority).flatten()[:48]])
    batch = Batch(images=images[rows], targets=labels[rows], indices=rows)
    above, state = MinorityResamplingCallback(mix=0.5, mix_below=share / 2), TrainState()
    _epoch(above, state, images, labels)
    assert above.flagged and above.weights is not None  # still resampled ...
    assert above.on_batch_start(state, batch) is batch and above.mixed == 0  # ... but not blended
    assert above.summary["mix"] == 0 and above.decision() == above.summary
    assert "resample the flagged minority" == above.summary["decision"]
    assert f"no blends: {100 * share:.1f}% flagged, not under mix_below" in decision_line(above.summary)
    below = MinorityResamplingCallback(mix=0.5, mix_below=min(1.0, share * 2))
    _epoch(below, state, images, labels)
    assert below.summary["mix"] == 0.5 and below.summary["no_blends"] is None
    assert int(below.on_batch_start(state, batch).randomized.sum()) > 0
    resumed = MinorityResamplingCallback(mix=0.5, mix_below=share / 2)
    resumed.load_state_dict(above.state_dict())
    assert resumed.on_batch_start(state, batch) is batch  # the decision travels with the checkpoint
    for bad in (-0.1, 2, "small"):
        with pytest.raises(ValueError, match="mix_below must be a number in"):
            MinorityResamplingCallback(mix=0.5, mix_below=bad)


def _trained_epoch(callback: MinorityResamplingCallback, state: TrainState, images, labels, logits,
                   batch: int = 50) -> None:
    """One epoch in which the model answered ``logits`` for each sample (the loss passes the callback's hook)."""
    for start in range(0, len(images), batch):
        rows = slice(start, start + batch)
        step = callback.on_batch_start(state, Batch(images=images[rows], targets=labels[rows],
                                                    indices=torch.arange(len(images))[rows]))
        losses = torch.nn.functional.cross_entropy(logits[rows], labels[rows], reduction="none")
        assert torch.equal(callback.on_loss(state, step, logits[rows], losses), losses)  # read, never changed
        state.global_step += 1
    callback.on_epoch_end(state)
    state.epoch += 1


def _model_logits(labels: torch.Tensor, sure_wrong: torch.Tensor, hesitant_wrong: torch.Tensor) -> torch.Tensor:
    """Logits of a model that is right with 90%, near-certainly wrong (1%) on ``sure_wrong`` and narrowly wrong
    (45%) on ``hesitant_wrong``."""
    own = torch.full((len(labels),), 0.9)
    own[sure_wrong], own[hesitant_wrong] = 0.01, 0.45
    probabilities = torch.stack([own, 1 - own], 1)
    probabilities[labels == 1] = probabilities[labels == 1].flip(1)
    return probabilities.log()


def test_a_second_look_at_the_models_own_mistakes_resamples_a_shortcut_the_estimate_missed(
        capsys: pytest.CaptureFixture) -> None:
    images, labels, _ = _scenes(400, correlation=0.5)  # nothing the estimate's net can see
    generator = torch.Generator().manual_seed(1)
    learned = torch.rand(400, generator=generator) < 0.08  # what the model's shortcut gets wrong
    callback = MinorityResamplingCallback(second_look=0.2)
    state = TrainState(total_steps=40)  # 8 steps an epoch: the look comes after the second epoch
    logits = _model_logits(labels, learned, torch.zeros(400, dtype=torch.bool))
    _trained_epoch(callback, state, images, labels, logits)
    assert not callback.summary["biased"] and callback.weights is None
    assert "while a second look at the model's own mistakes watches each epoch (until 20% of the run)" in \
        capsys.readouterr().out
    restored = MinorityResamplingCallback(second_look=0.2)
    restored.load_state_dict(callback.state_dict())  # a resume keeps what the model answered so far
    assert restored.predictions == callback.predictions
    _trained_epoch(callback, state, images, labels, logits)
    look = callback.summary["second_look"]
    assert look["made"] and look["epoch"] == 2 and look["biased"] and look["flagged"] == int(learned.sum())
    assert callback.flagged == set(torch.nonzero(learned).squeeze(1).tolist())
    weights = CallbackList([callback]).sampling_weights(state, range(400))
    for label in (0, 1):
        rows = labels == label
        assert weights[rows & learned].sum() == pytest.approx(float(weights[rows & ~learned].sum()))
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("minority_resampling: second look after epoch 2: the model gets")
    assert f"biased; {int(learned.sum())} samples flagged" in said[0] and "from epoch 3 on" in said[0]
    assert decision_line(callback.summary).endswith(said[0])  # the run's decision line tells both
    _trained_epoch(callback, state, images, labels, logits)  # one look only
    assert capsys.readouterr().out == "" and callback.predictions == {}


def test_hesitant_mistakes_keep_plain_erm_and_a_loop_that_hides_its_outputs_is_told(
        capsys: pytest.CaptureFixture) -> None:
    images, labels, _ = _scenes(400, correlation=0.5)
    hesitant = torch.rand(400, generator=torch.Generator().manual_seed(2)) < 0.15
    callback, state = MinorityResamplingCallback(second_look=0.0), TrainState()
    _trained_epoch(callback, state, images, labels, _model_logits(labels, torch.zeros(400, dtype=torch.bool),
                                                                   hesitant))
    _trained_epoch(callback, state, images, labels, _model_logits(labels, torch.zeros(400, dtype=torch.bool),
                                                                   hesitant))
    said = capsys.readouterr().out.strip().splitlines()
    assert "no shortcut seen; training stays plain ERM" in said[-1] and callback.weights is None
    assert callback.summary["second_look"]["sure_mistakes"] == 0.0
    blind, state = MinorityResamplingCallback(second_look=0.5), TrainState()
    _epoch(blind, state, images, labels)  # the estimate before training, at the first epoch's end
    _epoch(blind, state, images, labels)  # no loss reached the callback
    said = capsys.readouterr().out.strip().splitlines()
    assert said[-1] == ("minority_resampling: no second look: the model's outputs reached minority_resampling for 0 "
                        "of 400 training samples by epoch 2 (its loss must pass through robust.criterion); training "
                        "stays plain ERM")
    assert not blind.changes_loss  # a loop need not route its loss for the default
    with pytest.raises(ValueError, match=r"second_look must be a number in \[0, 1\], got 2"):
        MinorityResamplingCallback(second_look=2)


def test_the_second_look_judges_each_epoch_until_a_shortcut_shows_or_its_deadline(
        capsys: pytest.CaptureFixture) -> None:
    images, labels, _ = _scenes(400, correlation=0.5)
    learned = torch.rand(400, generator=torch.Generator().manual_seed(3)) < 0.08
    none = torch.zeros(400, dtype=torch.bool)
    guessing = _model_logits(labels, none, torch.rand(400, generator=torch.Generator().manual_seed(4)) < 0.5)
    hesitant = _model_logits(labels, none, learned)  # beats chance, its mistakes still narrow ones
    callback, state = MinorityResamplingCallback(second_look=0.5), TrainState(total_steps=80)  # 8 steps an epoch
    _trained_epoch(callback, state, images, labels, guessing)  # the estimate
    _trained_epoch(callback, state, images, labels, guessing)  # about chance: no verdict yet
    _trained_epoch(callback, state, images, labels, hesitant)  # above chance, no near-certain mistake: not yet
    assert "second_look" not in callback.summary and callback.predictions == {}
    _trained_epoch(callback, state, images, labels, _model_logits(labels, learned, none))  # the shortcut is learned
    look = callback.summary["second_look"]
    assert look["epoch"] == 4 and look["biased"] and look["flagged"] == int(learned.sum())
    late, state = MinorityResamplingCallback(second_look=0.3), TrainState(total_steps=80)
    for _ in range(5):
        _trained_epoch(late, state, images, labels, hesitant)
    assert late.summary["second_look"]["epoch"] == 3 and not late.summary["second_look"]["biased"]  # the deadline
    assert "no shortcut seen" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("correlation", [0.9, 0.5], ids=["biased", "unbiased"])
def test_the_default_and_the_dataset_audit_give_one_answer(correlation: float) -> None:
    images, labels, _ = _marked_scenes(400, correlation=correlation)
    callback = MinorityResamplingCallback()
    _epoch(callback, TrainState(), images, labels)
    batches = [{"image": images[start : start + 100], "target": labels[start : start + 100],
                "index": torch.arange(start, start + 100), "path": [f"{i}.png" for i in range(start, start + 100)]}
               for start in range(0, 400, 100)]
    audit = dataset_audit(batches, num_classes=2)
    assert audit["biased"] == callback.summary["biased"] == (correlation == 0.9)
    assert audit["estimate_accuracy"] == callback.summary["estimate_accuracy"]
    assert {row["id"] for row in audit["per_sample"] if row["bias_conflicting"]} == callback.flagged
