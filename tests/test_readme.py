"""The README's plain-loop example runs as written (on the tiny benchmark, for two steps)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_plain_loop_snippet_runs(tiny_benchmark: Path) -> None:
    text = README.read_text()
    code = re.search(r"<!-- plain-loop -->\n```python\n(.*?)```", text, re.S).group(1)
    code = code.replace('"data/synth_waterbirds"', repr(str(tiny_benchmark)))
    code = code.replace("epochs = 10", "epochs = 2")  # 3 steps an epoch on the tiny benchmark
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    callbacks = namespace["callbacks"]
    assert namespace["state"].global_step == 6
    assert callbacks.callbacks[0].summary["samples"] == 160  # the probe saw every training sample once
    swapped = callbacks.callbacks[1].changed
    assert swapped > 0 and callbacks.maps.sources["gradcam"].computed == swapped  # maps of swapped rows only
