"""Maps per second of every registered map method, beside pytorch-grad-cam's GradCAM on the same model and layer.

One batch of random images; each method is warmed up once, then timed over ``--repeats`` calls (median).
Run on the CPU by default; ``--device cuda`` where a GPU is available.

Example:
    python bench/maps_per_second.py --models test_resnet resnet18 --batch 64 --size 64
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial

import torch

from robusttrain.attention import create_map_method, list_map_methods
from robusttrain.attention.gradcam import default_target_layers
from robusttrain.attention.hooks import resolve_layers
from robusttrain.models import create_model


def timed(call: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median seconds of ``call`` after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reference_gradcam(model: torch.nn.Module, images: torch.Tensor) -> Callable[[], object]:
    """pytorch-grad-cam's GradCAM on the layer our GradCAM picks by default."""
    from pytorch_grad_cam import GradCAM as ReferenceGradCAM

    layer = resolve_layers(model, default_target_layers(model, images.shape[-2:]))[0][1]
    cam = ReferenceGradCAM(model=model, target_layers=[layer])
    return lambda: cam(input_tensor=images, targets=None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["test_resnet", "resnet18"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device={device} batch={args.batch} size={args.size} threads={torch.get_num_threads()}")
    print("| model | method | s / batch | maps / s |")
    print("|---|---|---|---|")
    for name in args.models:
        model = create_model(name, num_classes=2).to(device).eval()
        # pool_attention reads the attention of a DropKey pooling head: the same body with that head.
        pooled = create_model(name, num_classes=2, attention_pool="dropkey").to(device).eval()
        images = torch.rand(args.batch, 3, args.size, args.size, device=device)
        calls = {method: partial(create_map_method(method, pooled if method == "pool_attention" else model), images)
                 for method in list_map_methods()}
        try:
            calls["pytorch-grad-cam GradCAM (reference)"] = reference_gradcam(model, images)
        except ImportError:
            print("pytorch-grad-cam is not installed (pip install grad-cam); reference skipped", file=sys.stderr)
        for method, call in calls.items():
            seconds = timed(call, args.repeats, device)
            print(f"| {name} | {method} | {seconds:.3f} | {args.batch / seconds:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
