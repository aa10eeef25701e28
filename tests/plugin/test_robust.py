"""Robust in a plain loop: any dataset as it comes, any loss per sample, maps in pixel space, resume without a
second pass, and a loud refusal where the loop cannot give the callbacks what they need."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from torchvision import datasets, transforms

from robusttrain import Robust, create_model
from robusttrain.callbacks import BackgroundRandomizationCallback, ReweightCallback
from robusttrain.data import WaterbirdsDataset
from robusttrain.data.ellipses import EllipseDataset
from robusttrain.plugin import PerSampleLoss

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _folder(tree: Path, normalise: object = None) -> datasets.ImageFolder:
    """The tree as ``ImageFolder`` normalised with ImageNet's statistics (or ``normalise``)."""
    normalise = normalise or transforms.Normalize(MEAN, STD)
    return datasets.ImageFolder(tree / "train", transforms.Compose([transforms.ToTensor(), normalise]))


def _train(robust: Robust, loader: DataLoader, loss: nn.Module | None = None, epochs: int = 1,
           model: nn.Module | None = None) -> tuple[nn.Module, list[float]]:
    torch.manual_seed(0)
    model = model or create_model("test_resnet", num_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    prepared = robust.prepare(model, optimizer, loader, *([loss] if loss is not None else []), epochs=epochs)
    criterion = prepared[3] if loss is not None else robust.criterion()
    losses = []
    for _ in range(epochs):
        for images, targets in prepared[2]:
            value = criterion(model(images), targets)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            losses.append(float(value))
    return model, losses


@pytest.mark.slow
def test_a_regression_target_trains_through_the_plain_loop_object() -> None:
    """The joint attention head paper's regression (an ellipse's inclination), with MSE per sample."""

    class Pairs(Dataset):  # (image, target) tuples, as a user's regression dataset gives them
        def __init__(self) -> None:
            self.inner = EllipseDataset("inclination", 128, seed=0)

        def __len__(self) -> int:
            return len(self.inner)

        def __getitem__(self, i: int) -> tuple:
            item = self.inner[i]
            return item["image"], item["target"]

    robust = Robust([{"name": "joint_attention", "area_weight": 5.0, "background_area": 0.92}], loss=nn.MSELoss())
    torch.manual_seed(0)
    model = create_model("test_resnet", num_classes=2, attention_head=True)
    _, losses = _train(robust, DataLoader(Pairs(), batch_size=32, shuffle=True), nn.MSELoss(), epochs=3,
                       model=model)
    assert robust.state.global_step == 12 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert 0 < robust.state.metrics["joint_attention/background_area"] < 1  # the head's area term was computed


@pytest.mark.slow
def test_background_swaps_run_in_pixel_space_and_unchanged_rows_stay_exact(image_tree: Path) -> None:
    swap = BackgroundRandomizationCallback(p=0.5)  # Grad-CAM maps of the user's own (normalised) model
    robust = Robust([swap])
    loader = DataLoader(_folder(image_tree), batch_size=32, shuffle=True)
    model = create_model("test_resnet", num_classes=2)
    prepared = robust.prepare(model, torch.optim.SGD(model.parameters(), lr=0.01), loader)[2]
    original = DataLoader(_folder(image_tree), batch_size=32)
    images, _ = next(iter(prepared))
    batch = robust.current
    assert swap.changed > 0 and batch.randomized.any() and not batch.randomized.all()
    assert 0 <= float(batch.images.min()) and float(batch.images.max()) <= 1  # callbacks saw [0, 1] pixels
    kept = images[~batch.randomized]
    sources = torch.cat([x for x, _ in original])[batch.indices[~batch.randomized]]
    assert torch.equal(kept, sources)  # rows no callback changed are the loader's values, bit for bit
    changed = images[batch.randomized] * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert float(changed.min()) > -1e-4 and float(changed.max()) < 1 + 1e-4  # renormalised as the model expects


def test_any_loss_is_taken_per_sample_and_the_users_object_is_unchanged() -> None:
    outputs, targets = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    smoothing = nn.CrossEntropyLoss(label_smoothing=0.1)
    per_sample = PerSampleLoss(smoothing)(outputs, targets)
    assert per_sample.shape == (4,) and smoothing.reduction == "mean"
    assert torch.allclose(per_sample.mean(), smoothing(outputs, targets))
    assert PerSampleLoss(nn.MSELoss())(torch.zeros(4, 2), torch.ones(4, 2)).tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="must give one value per sample.*reduction='none'"):
        PerSampleLoss(lambda o, t: nn.functional.cross_entropy(o, t))(outputs, targets)
    with pytest.raises(ValueError, match="float32 targets .* need a loss"):
        PerSampleLoss()(outputs, torch.rand(4))


def test_loops_that_cannot_serve_the_callbacks_are_refused_at_the_start(image_tree: Path) -> None:
    folder = _folder(image_tree)
    model = create_model("test_resnet", num_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    weighted = DataLoader(folder, batch_size=8, sampler=WeightedRandomSampler([1.0] * len(folder), len(folder)))
    with pytest.raises(ValueError, match="own sampler \\(WeightedRandomSampler\\).*shuffle=True"):
        Robust().prepare(model, optimizer, weighted)
    with pytest.raises(ValueError, match="needs the training DataLoader and the optimizer"):
        Robust().prepare(model, DataLoader(folder, batch_size=8))
    with pytest.raises(ValueError, match="got 2 objects taken for the model"):
        Robust().prepare(model, copy.deepcopy(model), optimizer, DataLoader(folder, batch_size=8))
    hidden = transforms.Lambda(lambda x: (x - 0.45) / 0.225)  # a normalisation robusttrain cannot see
    loader = Robust().prepare(model, optimizer, DataLoader(_folder(image_tree, hidden), batch_size=64))[2]
    with pytest.raises(ValueError, match=r"images range over \[-1\.\d+, .*Robust\(mean=..., std=...\)"):
        next(iter(loader))


@pytest.mark.slow
def test_a_loss_callback_left_out_of_the_loss_is_named_at_the_first_step(image_tree: Path) -> None:
    robust = Robust([ReweightCallback(alpha=2.0)])
    model = create_model("test_resnet", num_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    _, optimizer, loader = robust.prepare(model, optimizer, DataLoader(_folder(image_tree), batch_size=32))
    images, labels = next(iter(loader))
    nn.functional.cross_entropy(model(images), labels).backward()  # the user's own loss, not robust.criterion
    with pytest.raises(ValueError, match="ReweightCallback change the per-sample loss.*robust.criterion"):
        optimizer.step()


@pytest.mark.slow
def test_dict_batches_with_their_own_keys_and_a_resume_without_a_second_pass(
        tiny_benchmark: Path, capsys: pytest.CaptureFixture) -> None:
    class Renamed(Dataset):
        def __init__(self) -> None:
            self.inner = WaterbirdsDataset(tiny_benchmark, "train")

        def __len__(self) -> int:
            return len(self.inner)

        def __getitem__(self, i: int) -> dict:
            item = self.inner[i]
            return {"img": item["image"], "cls": item["target"], "path": str(i)}

    def loader() -> DataLoader:
        return DataLoader(Renamed(), batch_size=32, shuffle=True)

    class Keyed(DataLoader):
        def __iter__(self):
            return ((b["img"], b["cls"]) for b in super().__iter__())

    first = Robust(image_key="img", target_key="cls")
    model = create_model("test_resnet", num_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    prepared = first.prepare(model, optimizer, loader())[2]
    for raw in prepared:
        assert set(raw) == {"img", "cls", "path"}  # the user's structure, as the dataset gave it
        loss = first.criterion()(model(raw["img"]), raw["cls"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    said = capsys.readouterr().out
    assert "minority_resampling:" in said and first.state.global_step == len(prepared)
    saved = first.state_dict()
    resumed = Robust(image_key="img", target_key="cls")
    resumed.load_state_dict(saved)
    again = resumed.prepare(model, torch.optim.SGD(model.parameters(), lr=0.01), loader())[2]
    next(iter(again))
    assert "minority_resampling:" not in capsys.readouterr().out  # restored: no second pass
    assert resumed.state.epoch == 1 and resumed.sampler.epoch == 1
    assert resumed.callbacks.callbacks[0].summary == first.callbacks.callbacks[0].summary


@pytest.mark.slow
def test_worker_processes_give_the_same_draws_and_ids(image_tree: Path) -> None:
    """Sample ids travel with each batch from worker processes; the draws do not depend on the workers."""
    drawn = []
    for workers in (0, 2):
        robust = Robust([])
        model = create_model("test_resnet", num_classes=2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        loader = DataLoader(_folder(image_tree), batch_size=64, shuffle=True, num_workers=workers)
        loader = robust.prepare(model, optimizer, loader)[2]
        ids = []
        for _images, labels in loader:
            ids += robust.current.indices.tolist()
            assert torch.equal(labels, torch.tensor([loader.dataset.targets[i] for i in robust.current.indices]))
        drawn.append(ids)
    assert drawn[0] == drawn[1] and sorted(drawn[0]) == list(range(len(drawn[0])))  # a shuffle: each sample once
