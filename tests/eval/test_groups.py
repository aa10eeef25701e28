from __future__ import annotations

import pytest

from robusttrain.eval import group_accuracy


def test_hand_made_case() -> None:
    predictions = [0, 0, 1, 1, 1, 0, 1, 0]
    targets = [0, 0, 1, 1, 0, 0, 1, 1]
    groups = [0, 0, 3, 3, 1, 1, 2, 2]
    result = group_accuracy(predictions, targets, groups)
    assert result["average_accuracy"] == pytest.approx(6 / 8)
    assert result["group_accuracy"] == {0: 1.0, 1: 0.5, 2: 0.5, 3: 1.0}
    assert result["worst_group_accuracy"] == 0.5 and result["worst_group"] == 1
    assert result["group_counts"] == {0: 2, 1: 2, 2: 2, 3: 2}
    assert "weighted_average_accuracy" not in result


def test_weighted_average_uses_training_group_shares() -> None:
    result = group_accuracy([0, 1, 1, 1], [0, 0, 1, 1], [0, 1, 2, 3], train_group_counts=[90, 10, 0, 0])
    # Only groups with training samples count: 0.9 * 1.0 + 0.1 * 0.0.
    assert result["weighted_average_accuracy"] == pytest.approx(0.9)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        group_accuracy([0, 1], [0], [0, 0])
    with pytest.raises(ValueError, match="empty"):
        group_accuracy([], [], [])
