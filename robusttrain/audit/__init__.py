"""Background-bias audits of a dataset (no model needed) and of a trained model, with an HTML report."""

from .blur import blur_protocol
from .dataset_audit import dataset_audit
from .loading import NoReadableImages, Skipped, load_audit_model, open_dataset, read_batches
from .model_audit import audit_model, summarize_records
from .report import write_report

__all__ = [
    "NoReadableImages",
    "Skipped",
    "audit_model",
    "blur_protocol",
    "dataset_audit",
    "load_audit_model",
    "open_dataset",
    "read_batches",
    "summarize_records",
    "write_report",
]
