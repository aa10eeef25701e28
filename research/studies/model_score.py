"""Which audit score ranks models as their worst-group accuracy does? Candidates measured on many trained models.

For each training run folder (``model.json``, ``model.pt``, ``metrics.json`` with the test worst-group accuracy)
the candidates are computed on ``--images`` evenly spaced test images; the table gives each candidate's Spearman
rank correlation with worst-group accuracy across the runs. Scores are oriented so that higher = more robust.

Mask-free (what a user without masks can compute):
  * ``map_view_keep``: 1 - the model audit's background reliance with views cut by the model's own Grad-CAM
    region (the current audit score; partly circular: a background-reliant model's region is background);
  * ``frame_swap_acc``: accuracy when the border frame (a sixth of each side; a model-independent region) is
    taken from an image of another label;
  * ``average_accuracy_here``: plain accuracy on the scored images (the baseline a score must beat);
  * ``conflict_acc``: accuracy on the test samples whose background a probe fitted on the *training* split
    (border-frame features, as the dataset audit without masks) assigns to another label.
With masks:
  * ``mask_view_keep``: 1 - background reliance with views cut by the true masks;
  * ``mask_swap_acc``: accuracy with the object pasted on the object-free (Only-BG-T) background of an image of
    another label.

``--correlation 0.95`` scores on a test subset as biased as the training split (every label-aligned test image and
enough of the others for that share), where average accuracy no longer tracks worst-group accuracy.

Example:
    python research/studies/model_score.py --data data/synth_waterbirds --runs reports/compare_default/*/seed_* \
        reports/compare_weights/*/seed_*
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from robusttrain.audit import open_dataset, read_batches
from robusttrain.audit.dataset_audit import BackgroundProbe
from robusttrain.audit.model_audit import audit_batch, other_label_donors
from robusttrain.estimate import background_region
from robusttrain.eval.views import probabilities
from robusttrain.maps import create_map_method
from robusttrain.models import ModelConfig, load_weights
from robusttrain.transforms.compositing import composite, only_bg_tiled

MASK_FREE = ("map_view_keep", "frame_swap_acc", "conflict_acc")
WITH_MASKS = ("mask_view_keep", "mask_swap_acc")


def scores(model: torch.nn.Module, batches: list[dict], probe: BackgroundProbe) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    method = create_map_method("gradcam", model)
    sums = dict.fromkeys(MASK_FREE + WITH_MASKS, 0.0)
    conflicting, conflict_hits, count, hits = 0, 0, 0, 0
    for batch in batches:
        images, labels, masks = batch["image"], batch["target"], batch["mask"]
        no_masks = {k: v for k, v in batch.items() if k != "mask"}
        sums["map_view_keep"] += sum(1 - r["background_reliance"] for r in audit_batch(model, method, no_masks))
        sums["mask_view_keep"] += sum(1 - r["background_reliance"] for r in audit_batch(model, method, batch))
        donors = other_label_donors(labels, generator)
        frame = background_region(images, None).float()
        swapped_frame = composite(images, 1 - frame, images[donors])
        sums["frame_swap_acc"] += float((probabilities(model, swapped_frame).argmax(1) == labels).sum())
        swapped_bg = composite(images, (masks > 0.5).float(), only_bg_tiled(images, masks)[donors])
        sums["mask_swap_acc"] += float((probabilities(model, swapped_bg).argmax(1) == labels).sum())
        other = probe.predict(images) != labels
        conflicting += int(other.sum())
        correct = probabilities(model, images).argmax(1) == labels
        conflict_hits += int(correct[other].sum())
        hits += int(correct.sum())
        count += len(labels)
    result = {k: v / count for k, v in sums.items() if k != "conflict_acc"}
    result["conflict_acc"] = conflict_hits / max(conflicting, 1)
    result["conflicting"] = conflicting
    result["average_accuracy_here"] = hits / count
    return result


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(values: list[float]) -> torch.Tensor:
        values_t = torch.tensor(values, dtype=torch.float64)
        order = values_t.argsort()
        rank = torch.empty_like(values_t)
        rank[order] = torch.arange(len(values), dtype=torch.float64)
        for value in values_t.unique():  # ties share their mean rank
            tied = values_t == value
            rank[tied] = rank[tied].mean()
        return rank

    x, y = ranks(a), ranks(b)
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x.norm() * y.norm()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--runs", nargs="+", required=True, help="training run folders")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--correlation", type=float, default=None,
                        help="score on a test subset with this share of label-aligned images (default: balanced)")
    parser.add_argument("--output", default="reports/bench_model_score.json")
    args = parser.parse_args()
    torch.set_grad_enabled(True)
    probe = BackgroundProbe(read_batches(open_dataset(args.data, "train"), 256))  # border features, no masks
    test = open_dataset(args.data, "test")
    if args.correlation is not None:  # place == label is the benchmark's aligned pairing
        aligned = [r for r in test.records if r.group % test.num_places == r.target]
        others = [r for r in test.records if r.group % test.num_places != r.target]
        keep = round(len(aligned) * (1 - args.correlation) / args.correlation)
        test.records = aligned + others[:: max(1, len(others) // keep)][:keep]
    step = len(test) / args.images
    test.records = [test.records[int(i * step)] for i in range(min(args.images, len(test)))]
    batches = list(read_batches(test, 100))
    results = []
    for run in map(Path, args.runs):
        model = ModelConfig.load(run).build()
        load_weights(model, run / "model.pt")
        model.eval()
        groups = json.loads((run / "metrics.json").read_text())["groups"]
        results.append({"run": str(run), "worst_group_accuracy": groups["worst_group_accuracy"],
                        "average_accuracy": groups["average_accuracy"], **scores(model, batches, probe)})
        print(json.dumps(results[-1]))
    worst = [r["worst_group_accuracy"] for r in results]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1))
    print(f"\n{len(results)} models, {len(test)} test images; Spearman rank correlation with test worst-group "
          "accuracy (of the full, balanced test split)")
    print("| score | needs masks | Spearman |\n|---|---|---|")
    for name in ("average_accuracy_here", *MASK_FREE, *WITH_MASKS):
        correlation = spearman([r[name] for r in results], worst)
        print(f"| `{name}` | {'yes' if name in WITH_MASKS else 'no'} | {correlation:.2f} |")
    # without the models whose worst group is (nearly) 0: are the scores still right among the useful ones?
    useful = [r for r in results if r["worst_group_accuracy"] > 0.05]
    print(f"\nthe {len(useful)} models with worst-group accuracy above 5%")
    for name in ("average_accuracy_here", *MASK_FREE, *WITH_MASKS):
        correlation = spearman([r[name] for r in useful], [r["worst_group_accuracy"] for r in useful])
        print(f"| `{name}` | {'yes' if name in WITH_MASKS else 'no'} | {correlation:.2f} |")


if __name__ == "__main__":
    main()
