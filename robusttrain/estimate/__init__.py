"""The label-free estimate of the bias-conflicting minority, one module for the callbacks and the audit
(callbacks -> estimate <- audit): what a small CNN learns first (out of fold; :mod:`.network`), the colour statistics
of the background with their linear probe (:mod:`.features`, :mod:`.probe`), and the draw weights."""

from .features import HISTOGRAM_BINS, LOOKS_AT, background_features, background_region
from .network import LOOKS_AT_NETWORK, estimate_minority_network, thumbnails
from .probe import (
                    BIAS_MARGIN,
                    MinorityEstimate,
                    estimate_minority,
                    fit_logistic,
                    fit_standardised,
                    judge,
                    probe_out_of_fold,
)
from .weights import balanced_weights

__all__ = ["BIAS_MARGIN", "HISTOGRAM_BINS", "LOOKS_AT", "LOOKS_AT_NETWORK", "MinorityEstimate", "background_features",
           "background_region", "balanced_weights", "estimate_minority", "estimate_minority_network", "fit_logistic",
           "fit_standardised", "judge", "probe_out_of_fold", "thumbnails"]
