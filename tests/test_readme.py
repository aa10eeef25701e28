"""The README's three ways to add the default run as written (on a class-folder tree of the user's kind, offline)
and resample for real: the decision line comes before the first step, and over an epoch the flagged minority is
drawn about as often as the rest of its label although it is a few percent of the data."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from torch.optim.optimizer import register_optimizer_step_pre_hook

from robusttrain import Robust

README = Path(__file__).resolve().parents[1] / "README.md"
HUB_MODEL = re.compile(r'timm\.create_model\("resnet18", pretrained=\w+')  # the README's line, made offline

pytestmark = pytest.mark.slow


def block(name: str) -> str:
    return re.search(rf"<!-- {name} -->\n```python\n(.*?)```", README.read_text(), re.S).group(1)


def offline(code: str, tree: Path, **more: str) -> str:
    code = HUB_MODEL.sub('timm.create_model("test_resnet", pretrained=False', code)
    for old, new in {'"data/my_images/train"': repr(str(tree / "train")),
                     '"data/my_images"': repr(str(tree)), "range(10)": "range(2)", "max_epochs=10": "max_epochs=2",
                     "num_train_epochs=10": "num_train_epochs=2", **more}.items():
        code = code.replace(old, new)
    return code


class Watch:
    """Records, at every optimizer step of the block, the sample ids the step trained on, and checks at the first
    step that the default had already decided and printed its decision."""

    def __init__(self, find: Callable[[], Robust], capsys: pytest.CaptureFixture) -> None:
        self.find, self.capsys, self.steps = find, capsys, []
        self.handle = register_optimizer_step_pre_hook(self.step)

    def step(self, *_: Any) -> None:
        robust = self.find()
        if robust.current is None:  # not a training step (the default's own estimate trains a small net)
            return
        if not self.steps:
            assert robust.decisions(), "the default must decide before the first step"
            assert "minority_resampling: biased:" in self.capsys.readouterr().out, "no decision line before step 1"
        self.steps.append(robust.current.indices.tolist())

    def check_resampled(self, robust: Robust, epoch_steps: int) -> None:
        self.handle.remove()
        callback = robust.callbacks.callbacks[0]
        flagged, size = callback.flagged, robust.sampler.num_samples
        assert callback.summary["biased"] and 0 < len(flagged) < 0.1 * size
        drawn = [i for step in self.steps[-epoch_steps:] for i in step]  # the last epoch's draws
        share = sum(i in flagged for i in drawn) / len(drawn)
        # Flagged and unflagged samples of each label carry equal mass: about half of all draws are flagged.
        assert 0.35 < share < 0.65, f"{share:.2f} of draws flagged; {len(flagged)} of {size} samples are"


def test_plain_loop_resamples_an_image_folder_with_imagenet_normalisation(image_tree: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    namespace: dict = {}
    watch = Watch(lambda: namespace["robust"], capsys)
    exec(compile(offline(block("plain-loop"), image_tree), "README.md", "exec"), namespace)
    robust = namespace["robust"]
    assert robust.format.normalization.mean == (0.485, 0.456, 0.406)  # found in the ImageFolder's transform
    assert robust.state.global_step == 2 * len(namespace["loader"]) == len(watch.steps)
    watch.check_resampled(robust, len(namespace["loader"]))


def test_lightning_callback_resamples_with_the_module_unchanged(image_tree: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("lightning")
    namespace: dict = {}
    setup = offline(block("plain-loop"), image_tree, **{"range(2)": "range(0)"})
    exec(compile(setup, "README.md", "exec"), namespace)  # the imports and the transform the block reuses
    watch = Watch(lambda: namespace["trainer"].callbacks[0].robust, capsys)
    code = offline(block("lightning"), image_tree).replace(
        "callbacks=[RobustCallback()])", "callbacks=[RobustCallback()], logger=False, enable_checkpointing=False, "
        "enable_progress_bar=False, enable_model_summary=False)")
    exec(compile(code, "README.md", "exec"), namespace)
    robust = namespace["trainer"].callbacks[0].robust
    steps = len(namespace["trainer"].train_dataloader)
    assert robust.state.global_step == 2 * steps == len(watch.steps)
    watch.check_resampled(robust, steps)


def test_hf_trainer_resamples_a_local_datasets_split(image_tree: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict = {}
    code = offline(block("hf-trainer"), image_tree, **{
        'transformers.AutoImageProcessor.from_pretrained("microsoft/resnet-18")':
            'transformers.ViTImageProcessor(size={"height": 32, "width": 32})',
        '"outputs/hf"': repr(str(tmp_path / "hf")),
        "remove_unused_columns=False)": "remove_unused_columns=False, report_to=[], use_cpu=True, "
                                        "disable_tqdm=True, save_strategy='no')",
    })
    tiny = ("transformers.ResNetForImageClassification(transformers.ResNetConfig(num_labels=2, embedding_size=8, "
            "hidden_sizes=[8, 16], depths=[1, 1]))")
    code, found = re.subn(r"transformers\.AutoModelForImageClassification\.from_pretrained\(.*?\)\n", tiny + "\n",
                          code, flags=re.S)
    assert found == 1
    watch = Watch(lambda: namespace["trainer"].robust, capsys)
    exec(compile(code, "README.md", "exec"), namespace)
    trainer = namespace["trainer"]
    robust = trainer.robust
    assert robust.format.normalization.mean == (0.5, 0.5, 0.5)  # the image processor's
    steps = len(trainer.get_train_dataloader())
    assert robust.state.global_step == 2 * steps == len(watch.steps)
    watch.check_resampled(robust, steps)
    assert isinstance(trainer.model, transformers.ResNetForImageClassification)
