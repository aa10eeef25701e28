"""``robusttrain audit`` end to end: dataset audit, model audit, groups where the data has them, per-sample
tables (``samples.csv``, ``weights.csv``) and the report. Interrupted model audits resume from their records."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..estimate import BIAS_MARGIN, ESTIMATE
from .blur import blur_protocol
from .dataset_audit import ShortcutPredictor, dataset_audit
from .figures import cluster_grid, conflicting_lists, shortcut_maps
from .groups import (
    flag_recovery,
    label_place_table,
    model_groups,
    place_association,
    places_by_id,
    true_minority,
)
from .loading import NoReadableImages, load_audit_model, model_fingerprint, open_dataset, read_batches
from .model_audit import audit_model, example_maps, split_maps, summarize_records
from .report import write_report, write_sample_tables
from .verdict import conflict_accuracy, model_verdict

PARTIAL = "records.partial.jsonl"
MIN_PER_CLASS = 2  # the estimate's folds and clusters need this many images of each class
# The options that decide what a model-audit record holds: a resume must use the same ones.
RECORD_SETTINGS = ("data", "split", "masks_dir", "ignore_masks", "model", "arch", "maps", "image_size", "max_images",
                   "num_classes")


def run_audit(args: argparse.Namespace) -> dict[str, Any]:
    """Audit ``args.data`` (and ``args.model``) into ``args.output``; returns the report's content.

    Raises:
        NoReadableImages: no image could be read (a report naming each file is still written).
        ValueError, FileNotFoundError: bad options or data, named.
    """
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output {output} is an existing file; name a folder")
    created = not output.exists()
    try:
        return _audit(args, output)
    except BaseException:
        if created and output.is_dir() and not any(output.iterdir()):
            output.rmdir()  # a refused audit leaves no empty folder behind
        raise


def _audit(args: argparse.Namespace, output: Path) -> dict[str, Any]:
    start = time.perf_counter()
    dataset = open_dataset(args.data, args.split, args.image_size, args.masks_dir)
    if args.ignore_masks:
        dataset.records = [replace(r, mask=None) for r in dataset.records]
    if args.num_classes is not None and args.num_classes != dataset.num_classes:
        raise ValueError(f"--num-classes {args.num_classes} disagrees with the data, which has "
                         f"{dataset.num_classes} classes {dataset.class_names}")
    if args.max_images and args.max_images < len(dataset):
        step = len(dataset) / args.max_images
        dataset.records = [dataset.records[int(i * step)] for i in range(args.max_images)]
    counts = np.bincount(dataset.targets, minlength=dataset.num_classes)
    if not args.no_dataset_audit and counts.min() < MIN_PER_CLASS:
        sizes = ", ".join(f"{name}: {n}" for name, n in zip(dataset.class_names, counts.tolist(), strict=True))
        raise ValueError(f"the dataset audit needs at least {MIN_PER_CLASS} images of every class, the audited "
                         f"images have {sizes}" + (" (raise --max-images)" if args.max_images else ""))
    # The model is loaded before any work: a bad --model is refused before the dataset audit runs.
    model = load_audit_model(args.model, dataset.num_classes, args.arch) if args.model else None
    output.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"title": f"{args.data} ({args.split}, {len(dataset)} images)", "data": str(args.data),
                            "split": args.split, "model": args.model, "maps": args.maps}
    skipped: list = []
    sections = Sections()
    try:
        _dataset_section(args, dataset, info, skipped, sections)
        _model_section(args, model, dataset, output, info, skipped, sections)
    except NoReadableImages:  # a report naming every file, never over an earlier run's report
        info["skipped"] = [vars(s) for s in skipped]
        path = write_report(output / "unreadable" if (output / "report.json").exists() else output, info,
                            dataset.class_names)
        raise NoReadableImages(f"none of the {len(skipped)} images of {args.data} ({args.split}) could be read "
                               f"(first: {skipped[0].path}: {skipped[0].error}); the report names each: "
                               f"{path}") from None
    info["skipped"] = [vars(s) for s in skipped]
    if sections.samples:
        write_sample_tables(output, sections.samples, sections.records)
    info["seconds"] = time.perf_counter() - start
    path = write_report(output, info, dataset.class_names, sections.records, sections.examples, sections.figures)
    (output / PARTIAL).unlink(missing_ok=True)
    print(f"{len(skipped)} unreadable files skipped; report: {path}")
    return info


@dataclass
class Sections:
    """What the audit found besides ``info``: per-sample rows, model records, heat-map grids, figure HTML."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    examples: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)


def _dataset_section(args: argparse.Namespace, dataset: Any, info: dict[str, Any], skipped: list,
                     sections: Sections) -> None:
    if args.no_dataset_audit:
        return
    batches = tqdm(read_batches(dataset, args.batch_size, skipped=skipped), desc="dataset audit", unit="batch",
                   total=-(-len(dataset) // args.batch_size), disable=args.no_progress)
    audit = dataset_audit(batches, dataset.num_classes)
    rows = audit.pop("per_sample")
    net = audit.pop("shortcut_net")
    places = places_by_id(dataset)
    if places is not None:
        labels = {r["id"]: r["label"] for r in rows}
        minority = true_minority(labels, places)
        for row in rows:
            row.update(place=places[row["id"]], true_minority=row["id"] in minority)
        table = label_place_table(labels, places, dataset.num_classes, dataset.num_places)
        association = place_association(table)
        audit["groups"] = {"place_names": dataset.place_names, "table": table, "recovery": flag_recovery(rows, places),
                           "place_association": association}
        if association["accuracy"] >= association["chance"] + BIAS_MARGIN and not audit["biased"]:
            audit["verdict"] += (f". BUT the metadata's place column predicts the label with "
                                 f"{100 * association['accuracy']:.1f}% vs {100 * association['chance']:.1f}% chance: "
                                 f"this split IS biased, in a way {audit['checked']} do not see")
            audit["biased_by_place"] = True
    info["dataset_audit"] = audit
    sections.samples = rows
    sections.figures["clusters"] = cluster_grid(dataset, rows, dataset.class_names, audit["cluster_table"],
                                                highlight=audit["biased"])
    if net is not None:
        sections.figures["shortcut"] = shortcut_maps(dataset, rows, dataset.class_names, net, ESTIMATE.side)
    print(audit["verdict"])
    if audit["biased"] and "groups" in audit and not audit["groups"]["recovery"]["balanced"]:
        found = audit["groups"]["recovery"]
        print(f"flagged {found['flagged']} samples as bias-conflicting; true minority {found['true_minority']}, "
              f"precision {_percent(found['precision'])}, recall {_percent(found['recall'])}")


def _model_section(args: argparse.Namespace, model: Any, dataset: Any, output: Path, info: dict[str, Any],
                   skipped: list, sections: Sections) -> None:
    if model is None:
        if sections.samples:
            sections.figures["conflicting"] = conflicting_lists(dataset, sections.samples, dataset.class_names)
        return
    records = _resumable_records(args, model, dataset, output, skipped)
    records.sort(key=lambda r: r["id"])
    records, maps = split_maps(records)
    np.savez_compressed(output / "maps.npz", **maps)
    summary = summarize_records(records, dataset.num_classes)
    places = places_by_id(dataset)
    if places is not None:
        summary["groups"] = model_groups(records, places, dataset.class_names, dataset.place_names)
    if args.blur:
        info["blur"] = blur_protocol(model, read_batches(dataset, args.batch_size), method=args.maps)
    flags = _conflict_flags(args, dataset, info.get("dataset_audit"), sections.samples)
    if flags is not None:
        summary["conflict_accuracy"] = conflict_accuracy(records, *flags)
    summary["verdict"] = model_verdict(summary, info.get("blur"), dataset.class_names)
    info["model_summary"] = summary
    by_id = {r["id"]: r for r in records}
    reliant = summary["overall"]["most_background_reliant"][: args.examples]
    sections.records = records
    sections.examples["Most background-reliant samples"] = example_maps(model, dataset, reliant, args.maps, by_id)
    sections.examples["First samples"] = example_maps(model, dataset, [r["id"] for r in records[: args.examples]],
                                                      args.maps, by_id)
    if sections.samples:
        sections.figures["conflicting"] = conflicting_lists(dataset, sections.samples, dataset.class_names,
                                                            model=model, method=args.maps)
    print(summary["verdict"])


def _conflict_flags(args: argparse.Namespace, dataset: Any, data_audit: dict[str, Any] | None,
                    samples: list[dict[str, Any]]) -> tuple[dict[int, bool], str] | None:
    """Which samples' backgrounds suggest another label, and how that was decided: the dataset audit's
    out-of-fold flags when it found this split biased, otherwise a shortcut net fitted on the training split (the
    usual case for a balanced test split). ``None`` when neither exists."""
    if data_audit and data_audit["biased"]:
        return {r["id"]: r["bias_conflicting"] for r in samples}, "out-of-fold shortcut net on this split"
    if args.split == "train":
        return None
    try:
        reference = open_dataset(args.data, "train", args.image_size, args.masks_dir)
    except (FileNotFoundError, ValueError):
        return None
    predictor = ShortcutPredictor(read_batches(reference, args.batch_size))
    flags: dict[int, bool] = {}
    for batch in read_batches(dataset, args.batch_size):
        flags.update(zip(batch["index"].tolist(), (predictor.predict(batch["image"]) != batch["target"]).tolist(),
                         strict=True))
    return flags, "shortcut net fitted on the train split"


def _resumable_records(args: argparse.Namespace, model: Any, dataset: Any, output: Path,
                       skipped: list) -> list[dict[str, Any]]:
    """The model audit's records, kept in a partial file as they are made so an interrupted run resumes."""
    partial = output / PARTIAL
    settings = record_settings(args)
    if args.fresh:
        partial.unlink(missing_ok=True)
    records: list[dict[str, Any]] = []
    if partial.is_file():
        records = earlier_records(partial, settings)
    else:
        partial.write_text(json.dumps({"settings": settings}) + "\n")
    model_skipped: list = []
    with open(partial, "a") as sink:
        def keep(made: list[dict[str, Any]]) -> None:
            sink.writelines(json.dumps(r) + "\n" for r in made)
            sink.flush()

        records += audit_model(model, read_batches(dataset, args.batch_size, [r["id"] for r in records],
                                                   model_skipped), args.maps, on_records=keep,
                               total=len(dataset) - len(records), progress=not args.no_progress)
    if not skipped:  # the dataset audit did not run: the model audit's list names the unreadable files
        skipped += model_skipped
    if not records:
        raise NoReadableImages("model audit got no readable images")
    return records


def record_settings(args: argparse.Namespace) -> dict[str, str]:
    """What decides a model-audit record: the options of :data:`RECORD_SETTINGS` and a hash of the weights."""
    return {**{key: str(getattr(args, key)) for key in RECORD_SETTINGS}, "model_content": model_fingerprint(args.model)}


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


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"
