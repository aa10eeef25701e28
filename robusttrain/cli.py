"""Command line: ``robusttrain audit --data PATH [--model RUN|WEIGHTS|timm-name] [--maps gradcam] ...``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .attention import list_map_methods

PARTIAL = "records.partial.jsonl"
# The options that decide what a model-audit record holds: a resume must use the same ones.
RECORD_SETTINGS = ("data", "split", "masks_dir", "model", "arch", "maps", "image_size", "max_images", "num_classes")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robusttrain", description="Background-robust training tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    audit = commands.add_parser("audit", help="audit a dataset (and a model) for background bias; HTML report",
                                description="Without --model: the dataset audit (does the background alone "
                                "predict the label?). With --model: also the per-image model audit.")
    audit.add_argument("--data", required=True,
                       help="dataset folder (Waterbirds, Backgrounds Challenge or class folders)")
    audit.add_argument("--split", default="train")
    audit.add_argument("--masks-dir", default=None, help="parallel mask tree when the layout has none")
    audit.add_argument("--model", default=None, help="training run folder, weights file (with --arch) or timm name")
    audit.add_argument("--arch", default=None, help="timm name of the network in a weights file")
    audit.add_argument("--num-classes", type=positive_int, default=None, help="default: the dataset's class count")
    audit.add_argument("--maps", default="gradcam", choices=list_map_methods())
    audit.add_argument("--image-size", type=positive_int, default=64)
    audit.add_argument("--batch-size", type=positive_int, default=64)
    audit.add_argument("--max-images", type=positive_int, default=None,
                       help="audit an evenly spaced subset of this size")
    audit.add_argument("--blur", action="store_true", help="also run the LICNN background-blur protocol")
    audit.add_argument("--no-dataset-audit", action="store_true")
    audit.add_argument("--examples", type=int, default=16, help="heat-map tiles per grid in the report")
    audit.add_argument("--output", default="reports/audit")
    audit.add_argument("--fresh", action="store_true", help="ignore records of an earlier, interrupted run")
    audit.add_argument("--no-progress", action="store_true")
    return parser


def run_audit(args: argparse.Namespace) -> dict[str, Any]:
    from .audit import (
        audit_model,
        blur_protocol,
        dataset_audit,
        load_audit_model,
        open_dataset,
        read_batches,
        summarize_records,
        write_report,
    )
    from .audit.model_audit import example_maps, split_maps

    start = time.perf_counter()
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output {output} is an existing file; name a folder")
    output.mkdir(parents=True, exist_ok=True)
    dataset = open_dataset(args.data, args.split, args.image_size, args.masks_dir)
    if args.num_classes is not None and args.num_classes != dataset.num_classes:
        raise ValueError(f"--num-classes {args.num_classes} disagrees with the data, which has "
                         f"{dataset.num_classes} classes {dataset.class_names}")
    if args.max_images and args.max_images < len(dataset):
        step = len(dataset) / args.max_images
        dataset.records = [dataset.records[int(i * step)] for i in range(args.max_images)]
    num_classes = args.num_classes or dataset.num_classes
    info: dict[str, Any] = {"title": f"{args.data} ({args.split}, {len(dataset)} images)", "data": str(args.data),
                            "split": args.split, "model": args.model, "maps": args.maps}
    skipped: list = []
    if not args.no_dataset_audit:
        batches = tqdm(read_batches(dataset, args.batch_size, skipped=skipped), desc="dataset audit", unit="batch",
                       total=-(-len(dataset) // args.batch_size), disable=args.no_progress)
        info["dataset_audit"] = dataset_audit(batches, num_classes)
        print(info["dataset_audit"]["verdict"])
    records: list[dict[str, Any]] = []
    examples = {}
    if args.model:
        model = load_audit_model(args.model, num_classes, args.arch)
        partial = output / PARTIAL
        settings = {key: str(getattr(args, key)) for key in RECORD_SETTINGS}
        if args.fresh:
            partial.unlink(missing_ok=True)
        if partial.is_file():
            records = earlier_records(partial, settings)
        else:
            partial.write_text(json.dumps({"settings": settings}) + "\n")
        with open(partial, "a") as sink:
            def keep(made: list[dict[str, Any]]) -> None:
                sink.writelines(json.dumps(r) + "\n" for r in made)
                sink.flush()

            model_skipped: list = []
            records += audit_model(model, read_batches(dataset, args.batch_size, [r["id"] for r in records],
                                                       model_skipped), args.maps, on_records=keep,
                                   total=len(dataset) - len(records), progress=not args.no_progress)
        skipped = skipped or model_skipped
        records.sort(key=lambda r: r["id"])
        records, maps = split_maps(records)
        np.savez_compressed(output / "maps.npz", **maps)
        summary = summarize_records(records, num_classes)
        info["model_summary"] = summary
        by_id = {r["id"]: r for r in records}
        reliant = summary["overall"]["most_background_reliant"][: args.examples]
        examples["Most background-reliant samples"] = example_maps(model, dataset, reliant, args.maps, by_id)
        examples["First samples"] = example_maps(model, dataset, [r["id"] for r in records[: args.examples]],
                                                 args.maps, by_id)
        if args.blur:
            info["blur"] = blur_protocol(model, read_batches(dataset, args.batch_size), method=args.maps)
        print(f"mean background reliance {summary['overall']['background_reliance']:.3f} "
              f"(accuracy {summary['overall']['accuracy']:.3f})")
    info["skipped"] = [vars(s) for s in skipped]
    info["seconds"] = time.perf_counter() - start
    path = write_report(output, info, dataset.class_names, records, examples)
    (output / PARTIAL).unlink(missing_ok=True)
    print(f"{len(skipped)} unreadable files skipped; report: {path}")
    return info


def earlier_records(partial: Path, settings: dict[str, str]) -> list[dict[str, Any]]:
    """Records of an interrupted audit, if it ran with the same ``settings``.

    Raises:
        ValueError: the file was written with other settings (naming them), or has no settings line.
    """
    lines = [json.loads(line) for line in partial.read_text().splitlines() if line.strip()]
    if not lines or "settings" not in lines[0]:
        raise ValueError(f"{partial} does not say which audit wrote it; pass --fresh to start over")
    differ = {key: (lines[0]["settings"].get(key), value) for key, value in settings.items()
              if lines[0]["settings"].get(key) != value}
    if differ:
        described = ", ".join(f"{key} {old} -> {new}" for key, (old, new) in differ.items())
        raise ValueError(f"{partial} holds records of another audit ({described}); pass --fresh to start over or "
                         "another --output")
    print(f"resuming: {len(lines) - 1} samples already audited")
    return lines[1:]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_grad_enabled(True)
    try:
        if args.command == "audit":
            run_audit(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"robusttrain {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
