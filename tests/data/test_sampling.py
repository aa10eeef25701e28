"""Epoch sampling, shuffled or weighted by per-sample weights: deterministic, proportional, strict about input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robusttrain.data import AdaptiveEpochSampler, read_sample_weights


def test_draws_follow_the_weights_and_depend_only_on_seed_and_epoch() -> None:
    weights = torch.tensor([1.0, 1.0, 8.0, 0.0])
    sampler = AdaptiveEpochSampler(2000, seed=3)
    shuffle = list(sampler)
    assert sorted(shuffle) == list(range(2000))  # no weights: a permutation
    sampler.set_weights(weights.repeat(500))
    first = list(sampler)
    assert list(sampler) == first and len(first) == 2000
    sampler.set_epoch(1)
    assert list(sampler) != first
    counts = torch.bincount(torch.tensor(first) % 4, minlength=4).double() / len(first)
    assert counts[3] == 0 and counts[2] == pytest.approx(0.8, abs=0.03) and counts[0] == pytest.approx(0.1, abs=0.03)
    sampler.set_weights(None)
    sampler.set_epoch(0)
    assert list(sampler) == shuffle


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0], [1.0, float("nan")]])
def test_weights_that_cannot_be_sampled_are_refused(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="weights must be"):
        AdaptiveEpochSampler(2).set_weights(torch.tensor(weights))


def test_weights_file_is_read_in_the_datasets_order_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "weights.csv"
    path.write_text("id,weight,path\n5,2.0,a.png\n3,0.5,b.png\n")
    assert read_sample_weights(path, [3, 5]).tolist() == [0.5, 2.0]
    with pytest.raises(ValueError, match=r"no weight for 1 of the 3 training samples \(ids \[4\]"):
        read_sample_weights(path, [3, 4, 5])
    # A file from another dataset or split must not train silently: foreign and repeated ids are refused by row.
    with pytest.raises(ValueError, match=r"weights.csv row 2: id 5 is not a training sample of this dataset"):
        read_sample_weights(path, [3])
    (tmp_path / "twice.csv").write_text("id,weight\n3,1\n5,1\n3,2\n")
    with pytest.raises(ValueError, match="rows 2 and 4 both give a weight for id 3"):
        read_sample_weights(tmp_path / "twice.csv", [3, 5])
    (tmp_path / "zero.csv").write_text("id,weight\n3,0\n5,0\n")
    with pytest.raises(ValueError, match="every weight is 0"):
        read_sample_weights(tmp_path / "zero.csv", [3, 5])
    with pytest.raises(FileNotFoundError, match="sample weights file not found"):
        read_sample_weights(tmp_path / "missing.csv", [3])
    (tmp_path / "bad.csv").write_text("id,weight\n1,0.5\n2,heavy\n")
    with pytest.raises(ValueError, match=r"bad.csv row 3: id and weight must be numbers.*'heavy'"):
        read_sample_weights(tmp_path / "bad.csv", [1, 2])
    (tmp_path / "negative.csv").write_text("id,weight\n1,-2\n")
    with pytest.raises(ValueError, match="row 2: weight must be finite and non-negative"):
        read_sample_weights(tmp_path / "negative.csv", [1])
    (tmp_path / "columns.csv").write_text("sample,w\n1,2\n")
    with pytest.raises(ValueError, match=r"needs columns 'id' and 'weight' \(missing \['id', 'weight'\]\)"):
        read_sample_weights(tmp_path / "columns.csv", [1])
