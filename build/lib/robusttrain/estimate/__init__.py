"""The label-free estimate of the bias-conflicting minority, one module for the callbacks and the audit
(callbacks -> estimate <- audit): background features, the out-of-fold probe, and the draw weights."""

from .features import HISTOGRAM_BINS, LOOKS_AT, background_features, background_region
from .probe import BIAS_MARGIN, MinorityEstimate, estimate_minority, fit_logistic, fit_standardised, probe_out_of_fold
from .weights import balanced_weights

__all__ = ["BIAS_MARGIN", "HISTOGRAM_BINS", "LOOKS_AT", "MinorityEstimate", "background_features", "background_region",
           "balanced_weights", "estimate_minority", "fit_logistic", "fit_standardised", "probe_out_of_fold"]
