"""The README's plain-loop example runs as written (on the tiny benchmark, for two steps)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_plain_loop_snippet_runs(tiny_benchmark: Path) -> None:
    text = README.read_text()
    code = re.search(r"<!-- plain-loop -->\n```python\n(.*?)```", text, re.S).group(1)
    code = code.replace('"data/synth_waterbirds"', repr(str(tiny_benchmark)))
    last = "    state.global_step += 1; callbacks.on_step_end(state)"
    code = code.replace(last, last + "\n    if state.global_step == 2: break")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["state"].global_step == 2
    assert namespace["callbacks"].maps.sources["gradcam"].computed == 128
