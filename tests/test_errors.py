"""Bad input, as a new user would give it, to ``recipes/train.py`` and ``robusttrain audit``, each as a subprocess.

For every invocation: exit code 2, stderr is one line naming the flag, key, file or row, no traceback, and the
finished (and the unfinished) run folder beside it is byte for byte what it was; a refused invocation with a new
``--output-dir``/``--output`` leaves no folder behind.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from robusttrain.training import TrainOptions, train

from .folders import folder_hash

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, str(ROOT / "recipes" / "train.py")]
AUDIT = [sys.executable, "-m", "robusttrain.cli", "audit"]
# YAML anchors nested nine deep: 10^9 values once expanded, a few hundred bytes on disk.
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefghi", "bcdefghij", strict=True))
SMALL = ["--model", "test_resnet", "--image-size", "32", "--batch-size", "32", "--epochs", "2", "--no-progress",
         "--variant-pool-size", "64"]


def edited_copy(source: Path, target: Path, edit) -> Path:
    """A copy of a Waterbirds-layout dataset whose metadata rows went through ``edit(rows) -> rows``."""
    shutil.copytree(source, target)
    with open(target / "metadata.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    with open(target / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(edit(rows))
    return target


def _set(rows: list[dict], index: int, **values: str) -> list[dict]:
    rows[index].update(values)
    return rows


@pytest.fixture(scope="module")
def world(tiny_benchmark: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished run, an unfinished one (killed after its first checkpoint), hostile datasets and files."""
    base = tmp_path_factory.mktemp("errors")
    finished = base / "finished"
    train(TrainOptions.from_argv(["--data-dir", str(tiny_benchmark), "--output-dir", str(finished), *SMALL,
                                  "--max-steps", "3"])[0])
    unfinished = base / "unfinished"
    shutil.copytree(finished, unfinished)
    (unfinished / "metrics.json").unlink()
    (unfinished / "model.pt").unlink()
    ids = [row["img_id"] for row in csv.DictReader(open(tiny_benchmark / "metadata.csv")) if row["split"] == "0"]
    files = {
        "zero_weights": "id,weight\n" + "".join(f"{i},0\n" for i in ids),
        "foreign_weights": "id,weight\n" + "".join(f"{i},1\n" for i in ids) + "99999,1\n",
        "twice_weights": "id,weight\n" + "".join(f"{i},1\n" for i in ids) + f"{ids[0]},2\n",
        "not_yaml.yaml": "lr: [1, 2\n",
        "unknown_key.yaml": "learning_rate: 0.1\n",
        "lr_word.yaml": "lr: fast\n",
        "generate_word.yaml": "generate: 'yes'\n",
        "a_file": "not a folder\n",
        "precision_word.yaml": "mixed_precision: no\n",
        "bomb_key.yaml": BOMB + "callbacks:\n  - {name: minority_resampling, key: *j}\n",
        "bomb_maps.yaml": BOMB + "maps:\n  gradcam: {method: gradcam, method_options: *j}\n",
        "huge_weights": "id,weight\n" + "".join(f"{i},1e308\n" for i in ids),
        "tagged_suite.yaml": "version: 1\nmembers: !!python/object/apply:os.system [echo pwned]\n",
    }
    for name, text in files.items():
        (base / name).write_text(text)
    data = {
        "escape": lambda rows: _set(rows, 0, img_filename="../outside/x.png"),
        "absolute": lambda rows: _set(rows, 0, img_filename="/etc/passwd"),
        "mask_escape": lambda rows: _set(rows, 1, mask_filename="../../../../etc/passwd"),
        "negative_label": lambda rows: _set(rows, 2, y="-1"),
        "label_gap": lambda rows: [{**r, "y": "5" if r["y"] == "1" else r["y"]} for r in rows],
        "one_label": lambda rows: [{**r, "y": "0"} for r in rows],
        "header_only": lambda rows: [],
        "duplicate_id": lambda rows: _set(rows, 3, img_id=rows[4]["img_id"]),
        "split_code": lambda rows: _set(rows, 5, split="7"),
        "null_byte": lambda rows: _set(rows, 6, img_filename="00.cross/a\x00b.png"),
        "no_test_rows": lambda rows: [r for r in rows if r["split"] != "2"],
    }
    paths = {name: edited_copy(tiny_benchmark, base / f"data_{name}", edit) for name, edit in data.items()}
    truncated = paths["truncated_image"] = base / "data_truncated_image"
    shutil.copytree(tiny_benchmark, truncated)
    test_image = next(r["img_filename"] for r in csv.DictReader(open(truncated / "metadata.csv")) if r["split"] == "2")
    (truncated / test_image).write_bytes((truncated / test_image).read_bytes()[:200])
    return {"base": base, "finished": finished, "unfinished": unfinished, "data": tiny_benchmark, **paths}


def _cases(w: dict[str, Path]) -> list[tuple[str, list[str], str]]:
    """(name, command, what stderr must name) for each bad invocation."""
    data, base, finished, unfinished = str(w["data"]), w["base"], str(w["finished"]), str(w["unfinished"])
    new = str(base / "never_written")

    def train_(*flags: str, data_dir: str = data, out: str = new) -> list[str]:
        return [*TRAIN, "--data-dir", data_dir, "--output-dir", out, *SMALL, *flags]

    def bad_data(name: str) -> list[str]:
        return train_(data_dir=str(w[name]))

    resume = ("--resume", "auto")
    default = str(ROOT / "configs" / "callbacks" / "default.yaml")
    return [
        ("lr negative", train_("--lr", "-1"), "--lr must be a positive number"),
        ("lr nan", train_("--lr", "nan"), "--lr must be a finite number"),
        ("epochs zero", train_("--epochs", "0"), "--epochs must be >= 1"),
        ("batch size zero", train_("--batch-size", "0"), "--batch-size must be >= 1"),
        ("image size tiny", train_("--image-size", "4"), "--image-size must be >= 8"),
        ("epochs word", train_("--epochs", "two"), "--epochs: invalid int value"),
        ("unknown optimizer", train_("--optimizer", "rmsprop"), "--optimizer: invalid choice"),
        ("unknown dataset layout", train_("--dataset", "coco"), "--dataset: invalid choice"),
        ("unknown flag", train_("--learning-rate", "0.1"), "unrecognized arguments: --learning-rate"),
        ("unknown callback", train_("--callbacks", "[{name: nope}]"), "nope"),
        ("unknown callback option", train_("--callbacks", "[{name: minority_resampling, bogus: 1}]"), "bogus"),
        ("malformed callbacks yaml", train_("--callbacks", "[{name: minority_resampling"),
         "--callbacks is not valid YAML"),
        ("callbacks not a list", train_("--callbacks", "{name: minority_resampling}"), "--callbacks must be a list"),
        ("maps not a mapping", train_("--maps", "[1, 2]"), "--maps must be a mapping"),
        ("missing config file", train_("-c", str(base / "missing.yaml")), "config file not found"),
        ("config not yaml", train_("-c", str(base / "not_yaml.yaml")), "not_yaml.yaml is not valid YAML"),
        ("config unknown key", train_("-c", str(base / "unknown_key.yaml")), "unknown options ['learning_rate']"),
        ("config lr word", train_("-c", str(base / "lr_word.yaml")), "lr_word.yaml: lr"),
        ("config boolean word", train_("-c", str(base / "generate_word.yaml")), "generate must be true or false"),
        ("missing data dir", train_(data_dir=str(base / "nowhere")), "--data-dir"),
        ("missing masks dir", train_("--masks-dir", str(base / "no_masks")), "no_masks"),
        ("output dir is a file", train_(out=str(base / "a_file")), "--output-dir"),
        ("output dir under a file", train_(out=str(base / "a_file" / "run")), "which is a file"),
        ("output dir under /proc", train_(out="/proc/robusttrain_run"), "cannot write in /proc"),
        ("missing weights file", train_("--sample-weights", str(base / "nope.csv")), "sample weights file not found"),
        ("all-zero weights", train_("--sample-weights", str(base / "zero_weights")), "every weight is 0"),
        ("foreign weights id", train_("--sample-weights", str(base / "foreign_weights")), "id 99999 is not"),
        ("repeated weights id", train_("--sample-weights", str(base / "twice_weights")), "both give a weight"),
        ("path escapes the root", bad_data("escape"), "row 2 img_filename: '../outside/x.png' leads outside"),
        ("absolute path", bad_data("absolute"), "row 2 img_filename: absolute path '/etc/passwd'"),
        ("mask path escapes", bad_data("mask_escape"), "row 3 mask_filename"),
        ("negative label", bad_data("negative_label"), "row 4: y and place must be 0 or more"),
        ("label gap", bad_data("label_gap"), "y values must be 0..K-1"),
        ("one label", bad_data("one_label"), "has one class"),
        ("header only", bad_data("header_only"), "has a header but no rows"),
        ("duplicate id", bad_data("duplicate_id"), "have the same img_id"),
        ("unknown split code", bad_data("split_code"), "row 7: split must be 0 (train), 1 (val) or 2 (test)"),
        ("unknown model", train_("--model", "no_such_net"), "no_such_net"),
        ("callback option that does not fit the data",
         train_("--callbacks", "[{name: minority_resampling, attribute: 7}]", out=str(base / "attribute_run")),
         "attribute=7"),
        ("missing in9 folder", train_("--in9-dir", str(base / "no_in9")), "--in9-dir"),
        ("momentum out of range", train_("--momentum", "5"), "--momentum must be in [0, 1), got 5.0"),
        ("unquoted yaml no", train_("-c", str(base / "precision_word.yaml")), "put the word in quotes"),
        ("alias bomb as a callback key", train_("-c", str(base / "bomb_key.yaml")), "expand to more than 100000"),
        ("alias bomb in map options", train_("-c", str(base / "bomb_maps.yaml")), "expand to more than 100000"),
        ("cache capacity negative", train_("--maps", "{gradcam: {method: gradcam, cache_capacity: -5}}",
                                           "--callbacks", "[{name: reweight, source: gradcam}]"),
         "map source 'gradcam': cache_capacity must be a positive integer, got -5"),
        ("a weights file of another network for the pretrained file",
         train_("--pretrained-file", str(base / "a_file")), "could not load pretrained weights of test_resnet"),
        ("checkpoint is a folder", train_("--checkpoint", str(base)), "is a folder: give a weights file"),
        ("joint attention without a head", train_("--callbacks", "[{name: joint_attention}]",
                                                  out=str(base / "head_run")), "model has no attention head"),
        ("truncated test image", bad_data("truncated_image"), "test split: cannot decode image"),
        ("null byte in a path", bad_data("null_byte"), "row 8 img_filename: the file name holds a null byte"),
        ("split without rows", bad_data("no_test_rows"), "has no rows of the test split"),
        ("audit of a run folder with --arch", [*AUDIT, "--data", data, "--model", finished, "--arch", "resnet34",
                                               "--output", new], "--arch resnet34 applies to a weights file"),
        ("missing initial checkpoint", train_("--checkpoint", str(base / "nope.pt")), "nope.pt"),
        ("resume from a non-checkpoint", train_("--resume", str(base)), "is not a checkpoint folder"),
        ("finished run, no overwrite", train_(out=finished), "holds a finished run"),
        ("resume with another lr", train_(*resume, "--lr", "0.5", out=unfinished), "--lr 0.05 -> 0.5"),
        ("resume with another seed", train_(*resume, "--seed", "5", out=unfinished), "--seed 0 -> 5"),
        ("resume with added callbacks", train_(*resume, "-c", default, out=unfinished), "--callbacks [] ->"),
        ("resume with another optimizer", train_(*resume, "--optimizer", "adamw", out=unfinished), "--optimizer"),
        ("audit negative examples", [*AUDIT, "--data", data, "--examples", "-1", "--output", new], "--examples"),
        ("audit missing data", [*AUDIT, "--data", str(base / "nowhere"), "--output", new], "nowhere"),
        ("audit bad model", [*AUDIT, "--data", data, "--model", str(base / "a_file"), "--output", new], "--arch"),
        ("audit one image", [*AUDIT, "--data", data, "--max-images", "1", "--output", new], "raise --max-images"),
        ("audit header only", [*AUDIT, "--data", str(w["header_only"]), "--output", new], "no rows"),
        ("audit escaping path", [*AUDIT, "--data", str(w["escape"]), "--output", new], "leads outside"),
        ("audit unknown split", [*AUDIT, "--data", data, "--split", "dev", "--output", new], "unknown split"),
        ("peers with a missing base", [sys.executable, str(ROOT / "recipes" / "peers.py"), "--base",
                                       str(base / "nosuch.yaml"), "--output-dir", new], "config file not found"),
        ("feature masks with a missing config", [sys.executable, str(ROOT / "recipes" / "feature_masks.py"), "-c",
                                                 str(base / "nosuch.yaml"), "--output-dir", new],
         "config file not found"),
        ("suite file with a python tag", [sys.executable, str(ROOT / "research" / "suite.py"), "--suite",
                                           str(base / "tagged_suite.yaml"), "--output-dir", new],
         "tagged_suite.yaml is not valid YAML"),
        ("a benchmark of another config in --data-dir", train_("--generate", "--benchmark-correlation", "0.5"),
         "holds a benchmark made with another config: render into another folder"),
        ("feature masks with a bad config", [sys.executable, str(ROOT / "recipes" / "feature_masks.py"), "-c",
                                             str(base / "not_yaml.yaml"), "--output-dir", new], "is not valid YAML"),
    ]


@pytest.mark.slow
def test_every_bad_invocation_is_one_line_exit_2_and_changes_nothing(world: dict[str, Path]) -> None:
    cases = _cases(world)
    assert len(cases) >= 40
    guarded = (world["finished"], world["unfinished"])
    before = [folder_hash(folder) for folder in guarded]
    environment = {k: v for k, v in os.environ.items() if k != "ROBUSTTRAIN_DEBUG"}

    def call(case: tuple[str, list[str], str]) -> tuple[str, subprocess.CompletedProcess, str]:
        name, command, expected = case
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=world["base"],
                              env=environment)
        return name, done, expected

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(call, cases))
    problems = []
    for name, done, expected in results:
        lines = done.stderr.strip().splitlines()
        if done.returncode != 2 or len(lines) != 1 or "Traceback" in done.stderr or expected not in done.stderr:
            problems.append(f"{name}: exit {done.returncode}, stderr {done.stderr.strip()[-600:]!r}")
    assert not problems, "\n".join(problems)
    assert [folder_hash(folder) for folder in guarded] == before
    for refused in ("never_written", "attribute_run", "head_run"):  # checked before anything is written
        assert not (world["base"] / refused).exists(), refused


def test_an_input_error_shows_its_traceback_with_robusttrain_debug(world: dict[str, Path]) -> None:
    command = [*TRAIN, "--data-dir", str(world["base"] / "nowhere"), "--output-dir", str(world["base"] / "dbg")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ROBUSTTRAIN_DEBUG": "1"})
    assert done.returncode != 0 and "Traceback" in done.stderr


@pytest.mark.slow
def test_resume_of_a_finished_run_changes_nothing_and_says_so(world: dict[str, Path]) -> None:
    before = folder_hash(world["finished"])
    command = [*TRAIN, "--data-dir", str(world["data"]), "--output-dir", str(world["finished"]), *SMALL,
               "--max-steps", "3", "--resume", "auto"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "already finished" in done.stdout
    assert folder_hash(world["finished"]) == before
    metrics = json.loads((world["finished"] / "metrics.json").read_text())
    assert metrics["global_step"] == 3
