"""The network-eyed minority estimate: it finds a non-colour shortcut's minority, stays quiet without a shortcut,
is reproducible and leaves the global RNG alone."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from robusttrain.estimate import estimate_minority_network, thumbnails
from robusttrain.estimate.network import (
    ESTIMATE,
    LOOKS_AT_NETWORK,
    THUMBNAIL_SIDE,
    NetworkSettings,
    averaged_out_of_fold,
    looked_at,
    network_out_of_fold,
    sure_mistakes,
)


def _striped(count: int, correlation: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grey noise with faint stripes, horizontal (place 0) or vertical (place 1): same colours either way."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 2
    minority = torch.rand(count, generator=generator) > correlation
    place = torch.where(minority, 1 - labels, labels)
    images = 0.4 + 0.2 * torch.rand(count, 3, 32, 32, generator=generator)
    wave = (torch.arange(32) % 6 < 3).float() * 0.2
    images += torch.where(place[:, None, None, None] == 0, wave[None, None, :, None], wave[None, None, None, :])
    return images.clamp(0, 1), labels, minority


def test_the_flags_are_the_minority_of_a_texture_shortcut() -> None:
    images, labels, minority = _striped(400, correlation=0.9)
    estimate = estimate_minority_network(thumbnails(images, ESTIMATE.side), labels, 2)
    assert estimate.biased and estimate.sure_mistakes >= ESTIMATE.sure_share
    flagged = estimate.flagged
    assert (flagged & minority).sum() / flagged.sum() >= 0.8 and (flagged & minority).sum() / minority.sum() >= 0.8


def test_labels_nothing_predicts_are_not_called_biased_and_nothing_leaks() -> None:
    images, _, _ = _striped(400, correlation=0.9)
    noise = torch.randint(0, 2, (400,), generator=torch.Generator().manual_seed(5))  # unrelated to the images
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = estimate_minority_network(thumbnails(images), noise, 2, seed=3)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's random stream is untouched
    second = estimate_minority_network(thumbnails(images), noise, 2, seed=3)
    assert torch.equal(first.out_of_fold, second.out_of_fold)  # reproducible from the seed
    assert not first.biased and first.accuracy < 0.6


def test_thumbnails_are_small_uint8_copies() -> None:
    big = torch.rand(2, 3, 200, 100)
    small = thumbnails(big)
    assert small.dtype == torch.uint8 and small.shape == (2, 3, THUMBNAIL_SIDE, THUMBNAIL_SIDE // 2)
    assert thumbnails(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)  # never enlarged


def test_sure_mistakes_count_confident_wrong_answers_only() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    probabilities = torch.tensor([[0.9, 0.1], [0.05, 0.95], [0.45, 0.55], [0.6, 0.4]])
    assert sure_mistakes(probabilities, labels) == 0.5  # of two mistakes, one gives the label 0.05 < 0.4 / 2
    assert sure_mistakes(probabilities, labels, below=0.08) == 0.0  # 0.05 is not under 0.08 / 2


@pytest.mark.parametrize("settings", [ESTIMATE, replace(ESTIMATE, runs=1, flag_probability=0.1)],
                         ids=["estimate", "one_run"])
def test_the_settings_flag_only_confident_mistakes(settings: NetworkSettings) -> None:
    images, labels, minority = _striped(400, correlation=0.9)
    estimate = estimate_minority_network(thumbnails(images, settings.side), labels, 2, settings=settings)
    assert estimate.biased and estimate.flag_below == settings.flag_probability / 2
    truth = estimate.out_of_fold.gather(1, labels[:, None]).squeeze(1)
    wrong = estimate.out_of_fold.argmax(1) != labels
    assert torch.equal(estimate.flagged, wrong & (truth < settings.flag_probability / 2))
    assert (estimate.flagged & minority).sum() / estimate.flagged.sum() >= 0.8  # still the minority


def test_one_run_is_as_it_is_and_runs_are_averaged_geometrically() -> None:
    generator = torch.Generator().manual_seed(4)
    images = torch.randint(0, 256, (160, 3, 16, 16), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 2, (160,), generator=generator)
    one = network_out_of_fold(images, labels, 2, seed=7, width=4)
    assert torch.equal(averaged_out_of_fold(images, labels, 2, seed=7, width=4), one)  # one run: as it is
    runs = [one, *(network_out_of_fold(images, labels, 2, seed=7 + k, width=4) for k in (1, 2))]
    assert not torch.equal(runs[0], runs[1])  # each run its own fold split and initialisation
    averaged = averaged_out_of_fold(images, labels, 2, seed=7, width=4, runs=3)
    geometric = torch.stack(runs).clamp_min(1e-6).log().mean(0).exp()
    assert torch.allclose(averaged, geometric / geometric.sum(1, keepdim=True), atol=1e-6)
    assert ESTIMATE.runs == 2 and "2 runs averaged" in looked_at(ESTIMATE)
    assert looked_at(replace(ESTIMATE, runs=1)) == LOOKS_AT_NETWORK


def test_every_mistake_is_flagged_when_the_settings_say_so() -> None:
    images, labels, _ = _striped(400, correlation=0.9)
    every = NetworkSettings(flag_probability=None, sure_share=0.0)
    estimate = estimate_minority_network(thumbnails(images, every.side), labels, 2, settings=every)
    assert estimate.flag_below is None and torch.equal(estimate.flagged, estimate.out_of_fold.argmax(1) != labels)


def test_folds_trained_side_by_side_give_the_one_thread_result_and_restore_the_thread_setting() -> None:
    generator = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (160, 3, 16, 16), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 2, (160,), generator=generator)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one_by_one = network_out_of_fold(images, labels, 2, width=4)
        torch.set_num_threads(2)
        side_by_side = network_out_of_fold(images, labels, 2, width=4)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one_by_one, side_by_side)
