"""DFR (Kirichenko et al., 2023): keep a trained model's features and refit its last layer on group-balanced held-out
data with group labels (the validation split). The fit is spuco's ``DFR`` (an ensemble of L1 logistic regressions
on group-balanced subsets): fitted on one half of the held-out data, C chosen by worst-group accuracy on the other
half; the adapter feeds it our datasets and turns its coefficients back into a linear head."""

from __future__ import annotations

import importlib
import random
import warnings
from unittest import mock

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from ..data import MaskedImageDataset
from ..maps.state import kept_random_state
from .spuco import from_spuco


class _Pairs(Dataset):
    """``(image, target)`` tuples, the form spuco reads."""

    def __init__(self, dataset: MaskedImageDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        item = self.dataset[i]
        return item["image"], item["target"]


class _PreLogits(nn.Module):
    """The embedding a timm model's classifier reads."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.backbone.forward_head(self.model.forward_features(images), pre_logits=True)


class _SpucoView(nn.Module):
    """What spuco's DFR expects of a model: ``.backbone(images)`` gives the embeddings."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone = _PreLogits(model)


class RetrainedHead(nn.Module):
    """A model's features followed by a refitted linear head."""

    def __init__(self, model: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.features, self.head = _PreLogits(model), head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def _group_labeled(dataset: MaskedImageDataset, rows: list[int], wrapper: type) -> Dataset:
    groups = dataset.groups[rows]
    partition = {int(g): np.flatnonzero(groups == g).tolist() for g in np.unique(groups)}
    return wrapper(Subset(_Pairs(dataset), rows), partition)


def multiclass_l1_logistic() -> type:
    """sklearn's logistic regression (spuco's dependency, imported here), switching spuco's ``liblinear`` to
    ``saga`` (same L1 penalty) for 3+ classes."""
    from sklearn.linear_model import LogisticRegression

    class MulticlassL1LogisticRegression(LogisticRegression):
        def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LogisticRegression:
            if self.solver == "liblinear" and len(np.unique(y)) > 2:
                self.set_params(solver="saga", max_iter=max(self.max_iter, 2000))
            return super().fit(X, y, sample_weight)

    return MulticlassL1LogisticRegression


def dfr_model(model: nn.Module, held_out: MaskedImageDataset, seed: int = 0) -> RetrainedHead:
    """``model`` with its last layer refitted by spuco's DFR on ``held_out`` (group labels used)."""
    (GroupLabeledDatasetWrapper,) = from_spuco("spuco.datasets", "GroupLabeledDatasetWrapper")
    (DFR,) = from_spuco("spuco.last_layer_retrain", "DFR")
    # Half of the held-out data fits the heads, half chooses C (spuco's own random split fails on Python >= 3.11,
    # which refuses random.sample of a set, so the halves are drawn here and passed in).
    order = torch.randperm(len(held_out), generator=torch.Generator().manual_seed(seed)).tolist()
    halves = [_group_labeled(held_out, order[: len(order) // 2], GroupLabeledDatasetWrapper),
              _group_labeled(held_out, order[len(order) // 2 :], GroupLabeledDatasetWrapper)]
    device = next(model.parameters()).device
    # spuco reseeds the global generators from Python's, and draws its group-balanced subsets from them
    # spuco fits sklearn's liblinear solver, which sklearn >= 1.8 refuses for 3+ classes: the same L1-penalised
    # logistic regression, fitted by saga where there are more than two classes
    logistic = mock.patch.object(importlib.import_module(DFR.__module__), "LogisticRegression",
                                 multiclass_l1_logistic())
    with kept_random_state(), warnings.catch_warnings(), logistic:
        random.seed(seed)
        dfr = DFR(halves[0], _SpucoView(model).eval(), validation_set=halves[1], device=device)
        # spuco passes sklearn an option sklearn >= 1.8 deprecates, on every fit
        warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
        warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
        dfr.train()
    _, coef, intercept, _ = dfr.linear_model
    coef, intercept = torch.as_tensor(coef, dtype=torch.float32), torch.as_tensor(intercept, dtype=torch.float32)
    if coef.shape[0] == 1:  # a binary logistic regression scores class 1 against class 0
        coef, intercept = torch.cat([torch.zeros_like(coef), coef]), torch.cat([torch.zeros(1), intercept])
    head = nn.Linear(coef.shape[1], coef.shape[0], device=device)
    with torch.no_grad():  # the fitted coefficients replace the initial weights
        head.weight.copy_(coef)
        head.bias.copy_(intercept)
    return RetrainedHead(model, head).eval()
