"""The spuco adapters: JTT's error set becomes sampling weights; DFR's refitted last layer becomes a model."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robusttrain.data import WaterbirdsDataset, build_eval_transform
from robusttrain.eval.evaluate import predict
from robusttrain.models import create_model
from robusttrain.peers import dfr_model, jtt_weights


def test_jtt_upweights_exactly_the_misclassified_samples_and_leaves_the_rng_alone(tiny_benchmark: Path) -> None:
    train = WaterbirdsDataset(tiny_benchmark, "train", build_eval_transform(32))
    torch.manual_seed(1)
    model = create_model("test_resnet", num_classes=2)
    wrong = predict(model, train)
    wrong = wrong["prediction"] != wrong["target"]
    before = torch.random.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    weights = jtt_weights(model, train, upweight=20.0)
    assert torch.equal(torch.random.get_rng_state(), before[0])  # spuco reseeds all three generators
    assert random.getstate() == before[1] and (np.random.get_state()[1] == before[2]).all()
    assert weights.tolist() == [20.0 if w else 1.0 for w in wrong.tolist()]
    assert 0 < int(wrong.sum()) < len(train)


class _ColourHead(nn.Module):
    """Pre-logit features: the object's redness and blueness, and the background's green tint."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward_head(self, images: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        red = (images[:, 0] - images[:, 2]).flatten(1)
        features = torch.stack([red.amax(1), (-red).amax(1), images[:, 1].mean((1, 2))], dim=1)
        return features if pre_logits else self.fc(features)


class _Colours(nn.Module):
    """An ImageModel-shaped model (``backbone.forward_head``, ``forward_features``) over colour features."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _ColourHead()
        self.fc = self.backbone.fc

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(images)


class _Scenes(torch.utils.data.Dataset):
    """Red (class 1) or blue (class 0) squares, no square (class 2, with ``classes=3``), on green- or grey-tinted
    backgrounds; group = label x tint."""

    def __init__(self, count: int = 96, classes: int = 2) -> None:
        generator = torch.Generator().manual_seed(0)
        self.labels = torch.arange(count) % classes
        tints = (torch.arange(count) // classes) % 2
        self.groups = (2 * self.labels + tints).numpy()
        self.images = torch.full((count, 3, 16, 16), 0.4)
        self.images[tints == 1, 1] = 0.6
        for i, label in enumerate(self.labels.tolist()):
            top, left = torch.randint(0, 10, (2,), generator=generator).tolist()
            if label == 2:
                continue
            colour = torch.tensor([0.9, 0.1, 0.1]) if label else torch.tensor([0.1, 0.1, 0.9])
            self.images[i, :, top : top + 6, left : left + 6] = colour[:, None, None]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "target": int(self.labels[i])}


def test_dfr_refits_the_last_layer_on_group_balanced_held_out_data() -> None:
    held_out = _Scenes()
    model = _Colours().eval()
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[0.0, 0.0, -5.0], [0.0, 0.0, 5.0]]))  # reads the tint only
        model.fc.bias.copy_(torch.tensor([2.5, -2.5]))
        assert (model(held_out.images).argmax(1) == held_out.labels).float().mean() == 0.5
        retrained = dfr_model(model, held_out, seed=0)
        accuracy = (retrained(held_out.images).argmax(1) == held_out.labels).float().mean()
    assert accuracy == 1.0  # the refitted head reads the object colour the features also carry
    assert model.fc.weight[0, 2] == -5.0  # the original model is left as it was


def test_dfr_refits_a_head_for_three_classes() -> None:
    held_out = _Scenes(120, classes=3)  # spuco asks sklearn for liblinear, which sklearn >= 1.8 refuses for 3+ classes
    with torch.no_grad():
        retrained = dfr_model(_Colours().eval(), held_out, seed=0)
        scores = retrained(held_out.images)
    assert scores.shape == (120, 3)
    assert (scores.argmax(1) == held_out.labels).float().mean() > 0.9
