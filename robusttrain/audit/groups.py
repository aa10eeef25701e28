"""True groups where the data has them (a place column, as in the Waterbirds layout): the label x place table,
how well the label-free flags found the true minority, and the model's accuracy per group.

The *true minority* of a label is every sample whose place is not the label's most common place (in the
audited split): a landbird on water when landbirds mostly sit on land.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ..eval.groups import group_accuracy

Row = dict[str, Any]


def places_by_id(dataset: Any) -> dict[int, int] | None:
    """``sample id -> place`` for datasets with a place column (``num_places``), else ``None``."""
    num_places = getattr(dataset, "num_places", None)
    if not num_places or num_places < 2:
        return None
    return {r.sample_id: r.group % num_places for r in dataset.records}


def true_minority(labels: Mapping[int, int], places: Mapping[int, int]) -> set[int]:
    """Ids whose place is not their label's most common place."""
    counts = Counter((labels[i], places[i]) for i in labels)
    common = {}
    for (label, place), count in sorted(counts.items()):
        if count > counts.get((label, common.get(label, -1)), 0):
            common[label] = place
    return {i for i in labels if places[i] != common[labels[i]]}


def label_place_table(labels: Mapping[int, int], places: Mapping[int, int], num_classes: int,
                      num_places: int) -> list[list[int]]:
    """Counts ``[label][place]``."""
    table = [[0] * num_places for _ in range(num_classes)]
    for i, label in labels.items():
        table[label][places[i]] += 1
    return table


def place_association(table: Sequence[Sequence[int]]) -> dict[str, float]:
    """How well the metadata's place column alone predicts the label (each place's most common label) against
    chance (the largest label share), from the ``[label][place]`` count table."""
    total = sum(map(sum, table))
    by_place = [max(row[place] for row in table) for place in range(len(table[0]))]
    return {"accuracy": sum(by_place) / total, "chance": max(map(sum, table)) / total}


MINORITY_SHARE = 0.25  # a split whose true minority is larger than this is (nearly) balanced: nothing to find


def flag_recovery(rows: Sequence[Row], places: Mapping[int, int]) -> dict[str, Any]:
    """Precision and recall of the rows flagged ``bias_conflicting`` against the true minority; both ``None``
    on a split whose groups are (nearly) balanced, where there is no minority to find."""
    labels = {r["id"]: r["label"] for r in rows}
    minority = true_minority(labels, places)
    flagged = {r["id"] for r in rows if r["bias_conflicting"]}
    hits = len(minority & flagged)
    balanced = len(minority) > MINORITY_SHARE * len(rows)
    return {"true_minority": len(minority), "flagged": len(flagged), "found": hits, "balanced": balanced,
            "precision": hits / len(flagged) if flagged and not balanced else None,
            "recall": hits / len(minority) if minority and not balanced else None}


def model_groups(records: Sequence[Row], places: Mapping[int, int], class_names: Sequence[str],
                 place_names: Sequence[str]) -> dict[str, Any]:
    """The model's accuracy per (label, place) group and the worst of them (:func:`~robusttrain.eval.group_accuracy`
    on the records; groups without samples left out), with the groups named."""
    count = len(place_names)
    result = group_accuracy([int(bool(r["correct"])) for r in records], [1] * len(records),
                            [r["label"] * count + places[r["id"]] for r in records])
    name = {g: f"{class_names[g // count]} / {place_names[g % count]}" for g in result["group_accuracy"]}
    rows = [{"group": name[g], "count": result["group_counts"][g], "accuracy": accuracy}
            for g, accuracy in sorted(result["group_accuracy"].items())]
    return {"groups": rows, "worst_group": name[result["worst_group"]],
            "worst_group_accuracy": result["worst_group_accuracy"]}
