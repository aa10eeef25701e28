"""Built-in Waterbirds-style background-bias benchmark (procedural objects on scikit-image backgrounds)."""

from .backgrounds import DOMAINS, render_background
from .generate import (
    ATTRIBUTES,
    BenchmarkConfig,
    generate_benchmark,
    group_counts,
    render_sample,
    sample_attributes,
    split_plan,
)
from .shapes import SHAPES, render_appearance, render_shape_mask
from .suite import SuiteMember, load_suite, load_suites

__all__ = [
    "ATTRIBUTES",
    "DOMAINS",
    "SHAPES",
    "BenchmarkConfig",
    "SuiteMember",
    "generate_benchmark",
    "group_counts",
    "load_suite",
    "load_suites",
    "render_appearance",
    "render_background",
    "render_sample",
    "render_shape_mask",
    "sample_attributes",
    "split_plan",
]
