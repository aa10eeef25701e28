"""Optional adapters (Lightning, Hugging Face Trainer, accelerate helpers); never imported by ``robusttrain``."""
