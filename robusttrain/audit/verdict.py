"""What a model audit means, in one line: which side the model uses, and two scores that rank models as their
worst-group accuracy does (BENCHMARKS.md): accuracy on the samples whose background suggests another label, and,
with masks, accuracy with each object on another label's background."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .blur import blur_radii
from .records import Record, mean_or_none


def conflict_accuracy(records: list[Record], flags: dict[int, bool], flags_from: str) -> dict[str, Any]:
    """Accuracy on the samples whose background suggests another label (``flags``) and on the others: a
    label-free estimate of worst-group accuracy, since those are the samples a background shortcut gets wrong,
    and what the same model reaches where the background agrees with the label."""
    hits: dict[bool, list[float]] = {True: [], False: []}
    for record in records:
        hits[bool(flags.get(record["id"]))].append(float(record["correct"]))
    return {"samples": len(hits[True]), "flags_from": flags_from, "accuracy": mean_or_none(hits[True]),
            "other_samples": len(hits[False]), "other_accuracy": mean_or_none(hits[False])}


VERDICT_MARGIN = 0.05  # 5 accuracy points: what counts as "uses", and what one side must lead the other by


GAP_MARGIN = 0.20  # 20 accuracy points: the worst group below the average, the misled samples below the others


ONE_CLASS_SHARE = 0.95  # this share of the answers on one class is "one answer for every image"


CONTRAST_SAMPLES = 20  # the fewest samples on each side of the contrast for it to overrule the views


def one_class_answer(summary: dict[str, Any], class_names: Sequence[str] = ()) -> str | None:
    """The evidence that the model gives one class for (nearly) every image: at least :data:`ONE_CLASS_SHARE` of
    its answers while that class is at least :data:`GAP_MARGIN` less of the labels. ``None`` otherwise."""
    answers = summary.get("answer_shares") or {}
    if not answers:
        return None
    top = max(answers, key=answers.get)
    labelled = summary.get("classes", {}).get(top, {}).get("count", 0) / summary["overall"]["count"]
    if answers[top] < ONE_CLASS_SHARE or answers[top] - labelled < GAP_MARGIN:
        return None
    name = class_names[int(top)] if int(top) < len(class_names) else f"class {top}"
    return f"it answers {name!r} for {100 * answers[top]:.1f}% of the images, which are {100 * labelled:.1f}% {name!r}"


Z95 = 1.96  # two-sided 95% normal quantile


def _adjusted(accuracy: float, samples: int) -> tuple[float, float]:
    """Accuracy with one hit and one miss added (Agresti-Caffo), and its variance: intervals that stay sensible
    at 0% and 100%."""
    adjusted = (accuracy * samples + 1) / (samples + 2)
    return adjusted, adjusted * (1 - adjusted) / (samples + 2)


def misled_contrast(summary: dict[str, Any]) -> dict[str, float] | None:
    """The graded contrast: accuracy on the samples whose background suggests another label with its 95% interval,
    and the loss against the others with its interval (``gap``, ``gap_low``, ``gap_high``); ``None`` unmeasured."""
    conflict = summary.get("conflict_accuracy") or {}
    if conflict.get("accuracy") is None or conflict.get("other_accuracy") is None:
        return None
    misled, misled_var = _adjusted(conflict["accuracy"], conflict["samples"])
    others, others_var = _adjusted(conflict["other_accuracy"], conflict["other_samples"])
    spread = Z95 * (misled_var + others_var) ** 0.5
    return {"accuracy": conflict["accuracy"], "accuracy_high": misled + Z95 * misled_var**0.5,
            "accuracy_low": max(0.0, misled - Z95 * misled_var**0.5),
            "gap": conflict["other_accuracy"] - conflict["accuracy"], "gap_low": others - misled - spread,
            "gap_high": others - misled + spread}


def misled_signal(contrast: dict[str, float] | None) -> bool:
    """Whether the model loses where the background points elsewhere, read from intervals, not from a point on a
    threshold's edge: the loss is surely at least half of :data:`GAP_MARGIN`, or it is surely above zero while
    the misled samples surely reach under ``1 - GAP_MARGIN`` (a fifth or more of them wrong)."""
    if contrast is None:
        return False
    return contrast["gap_low"] >= GAP_MARGIN / 2 or (contrast["gap_low"] > 0
                                                     and contrast["accuracy_high"] < 1 - GAP_MARGIN)


def _swap_gap(summary: dict[str, Any]) -> float | None:
    """How far accuracy with each object on another label's background falls below the average; ``None``
    unmeasured."""
    overall = summary.get("overall", {})
    swap, average = overall.get("background_swap_accuracy"), overall.get("accuracy")
    return None if swap is None or average is None else average - swap


def shortcut_signals(summary: dict[str, Any]) -> list[str]:
    """The evidence of a background shortcut besides the views and blur: the worst true group :data:`GAP_MARGIN`
    below the average; the samples whose background suggests another label below the others, graded by
    :func:`misled_signal` (the contrast a shortcut makes: it answers the one right and the other wrong); each
    object on another label's background :data:`GAP_MARGIN` below the average. One line per signal that fires."""
    overall = summary.get("overall", {})
    average = overall.get("accuracy")
    if average is None:
        return []
    found = []
    groups = summary.get("groups")
    if groups and average - groups["worst_group_accuracy"] >= GAP_MARGIN:
        worst = groups["worst_group_accuracy"]
        found.append(f"its worst true group ({groups['worst_group']}) reaches {100 * worst:.1f}% vs "
                     f"{100 * average:.1f}% on average")
    conflict = summary.get("conflict_accuracy") or {}
    contrast = misled_contrast(summary)
    if misled_signal(contrast):
        found.append(f"on the {conflict['samples']} samples whose background suggests another label it reaches "
                     f"{100 * conflict['accuracy']:.1f}% vs {100 * conflict['other_accuracy']:.1f}% on the "
                     f"{conflict['other_samples']} others, a loss of {_points(contrast)}")
    if (_swap_gap(summary) or 0.0) >= GAP_MARGIN:
        found.append(f"with each object on another label's background it reaches "
                     f"{100 * overall['background_swap_accuracy']:.1f}% vs {100 * average:.1f}%")
    return found


def _points(contrast: dict[str, float]) -> str:
    """The loss and its 95% interval, in accuracy points."""
    return (f"{100 * contrast['gap']:.1f} points (95% interval {100 * contrast['gap_low']:.1f} to "
            f"{100 * contrast['gap_high']:.1f})")


def background_not_deciding(summary: dict[str, Any]) -> str | None:
    """The evidence that the background does not decide on the real images: the samples whose background suggests
    another label surely fall less than :data:`GAP_MARGIN` below the others (upper end of the interval), with at
    least :data:`CONTRAST_SAMPLES` on each side. ``None`` otherwise (or when the contrast was not measured)."""
    conflict = summary.get("conflict_accuracy") or {}
    contrast = misled_contrast(summary)
    if (contrast is None or contrast["gap_high"] >= GAP_MARGIN
            or min(conflict["samples"], conflict["other_samples"]) < CONTRAST_SAMPLES):
        return None
    return (f"but the samples whose background suggests another label fall less than {100 * GAP_MARGIN:.0f} points "
            "below the others: the background leads in the views, not in the answers")


def model_verdict(summary: dict[str, Any], blur: dict[str, float] | None = None,
                  class_names: Sequence[str] = ()) -> str:
    """One line saying what the model relies on, from every signal the audit computed, and the evidence.

    With the blur protocol: the model *uses* the background (object) when blurring it (largest radius) costs at
    least :data:`VERDICT_MARGIN` of accuracy. Without: when its background-only (object-only) view keeps that
    much above chance. It *relies on the background* when it uses only the background, or the background leads
    by the margin; it *uses the background too* when it uses both and the object leads; it *relies on the
    object* when it uses the object only. Any :func:`shortcut_signals` (true groups, samples whose background
    suggests another label, swapped backgrounds) overrules a verdict of "object" or "neither": the model then
    *uses the background* (it relies on it when the views say so too). Views that say it relies on the background
    while no true-group or swap signal fired and the samples whose background suggests another label surely stay
    within :data:`GAP_MARGIN` of the others (:func:`background_not_deciding`: the views' collapse, not the model's
    answers on real images) give *uses the background too*. A model that gives one class for nearly every image
    (:func:`one_class_answer`) *answers one class*, whatever the views say: it has learned neither.
    """
    if blur:
        radius = blur_radii(blur)[-1]
        background = blur["original"] - blur[f"background_blurred_r{radius:g}"]
        obj = blur["original"] - blur[f"object_blurred_r{radius:g}"]
        evidence = (f"blurring the background (radius {radius:g}) costs {100 * background:.1f} accuracy points, "
                    f"blurring the object {100 * obj:.1f}")
    else:
        overall = summary["overall"]
        chance = summary.get("chance", 0.0)
        background, obj = overall["bg_only_accuracy"] - chance, overall["fg_only_accuracy"] - chance
        evidence = (f"the background-only view keeps {100 * overall['bg_only_accuracy']:.1f}% accuracy, the "
                    f"object-only view {100 * overall['fg_only_accuracy']:.1f}% (chance {100 * chance:.1f}%)")
    uses_background, uses_object = background >= VERDICT_MARGIN, obj >= VERDICT_MARGIN
    signals, contrast = shortcut_signals(summary), misled_contrast(summary)
    one_class = one_class_answer(summary, class_names)
    if one_class:
        finding, signals = "ANSWERS ONE CLASS", [one_class, *signals]
    elif uses_background and (not uses_object or background >= obj + VERDICT_MARGIN):
        # a misled loss surely under GAP_MARGIN still tempers "relies"; a true-group or swap signal does not
        others_fired = len(signals) > misled_signal(contrast)
        contradiction = None if others_fired else background_not_deciding(summary)
        finding = "USES THE BACKGROUND TOO" if contradiction else "RELIES ON THE BACKGROUND"
        evidence = f"{evidence}, {contradiction}" if contradiction else evidence
    elif uses_background:
        finding = "USES THE BACKGROUND TOO"
    elif signals:
        finding = "USES THE BACKGROUND"
    elif uses_object:
        finding = "relies on the object"
    else:
        finding = "neither the object nor the background alone decides"
    verdict = (f"{finding}: " + "; ".join([*signals, evidence])
               + f" (a margin of {100 * VERDICT_MARGIN:.0f} points decides)")
    swap = summary.get("overall", {}).get("background_swap_accuracy")
    if swap is not None and (_swap_gap(summary) or 0.0) < GAP_MARGIN:  # a signal that fired printed it already
        verdict += f"; accuracy with the object on another label's background {100 * swap:.1f}%"
    conflict = summary.get("conflict_accuracy")
    if conflict and conflict["accuracy"] is not None and not misled_signal(contrast):
        others = conflict.get("other_accuracy")
        verdict += (f"; accuracy on the {conflict['samples']} samples whose background suggests another label "
                    f"{100 * conflict['accuracy']:.1f}%, on the others "
                    + ("n/a" if others is None else f"{100 * others:.1f}%, a loss of {_points(contrast)}"))
    return verdict
