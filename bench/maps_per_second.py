"""Maps per second and peak memory of each map method, beside pytorch-grad-cam and captum (same model, layer).

One batch of random images; each method runs in a fresh process, is warmed up once, then timed over
``--repeats`` calls (median).
Run on the CPU by default; ``--device cuda`` where a GPU is available.

Example:
    python bench/maps_per_second.py --models test_resnet resnet18 --batch 64 --size 64
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial

import torch

from robusttrain.eval import write_tables_csv
from robusttrain.maps import create_map_method, list_map_methods
from robusttrain.maps.gradcam import default_target_layers
from robusttrain.maps.hooks import resolve_layers
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


def reference_captum(model: torch.nn.Module, images: torch.Tensor) -> Callable[[], object]:
    """captum's LayerGradCam on the same layer, predicted class, upsampled to the image (as ours)."""
    from captum.attr import LayerAttribution, LayerGradCam

    layer = resolve_layers(model, default_target_layers(model, images.shape[-2:]))[0][1]
    cam = LayerGradCam(model, layer)

    def call() -> torch.Tensor:
        with torch.no_grad():
            targets = model(images).argmax(1)
        maps = cam.attribute(images, target=targets, relu_attributions=True)
        return LayerAttribution.interpolate(maps, tuple(images.shape[-2:]), "bilinear")

    return call


# Map methods that read a part of the model a plain network lacks: the model each is measured on.
MODEL_FOR = {"pool_attention": {"attention_pool": "dropkey"}, "attention_head": {"attention_head": True},
             "feature_masks": {"feature_masks": True}}
REFERENCES = {"pytorch-grad-cam GradCAM (reference)": reference_gradcam,
              "captum LayerGradCam (reference)": reference_captum}


def measure(name: str, method: str, batch: int, size: int, repeats: int, device_name: str) -> tuple[float, float]:
    """Median seconds per batch and peak extra memory (MiB) of one method, in a fresh process on the CPU.

    CPU peak = the process's resident-set high-water mark after the maps minus the one after a plain forward
    pass; CUDA peak = ``max_memory_allocated`` during the maps minus the model and batch.
    """
    device = torch.device(device_name)
    torch.manual_seed(0)
    model = create_model(name, num_classes=2, **MODEL_FOR.get(method, {}))
    model = model.to(device).eval()
    images = torch.rand(batch, 3, size, size, device=device)
    if method in REFERENCES:
        call = REFERENCES[method](model, images)
    else:
        call = partial(create_map_method(method, model), images)
    with torch.no_grad():
        model(images)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    else:
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seconds = timed(call, repeats, device)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - baseline
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    return seconds, peak / 2**20


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["test_resnet", "resnet18"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--csv", help="also write the tables as CSV here (results/...)")
    args = parser.parse_args(argv)
    print(f"device={args.device} batch={args.batch} size={args.size} threads={torch.get_num_threads()}")
    lines = ["| model | method | s / batch | maps / s | peak extra memory (MiB) |", "|---|---|---|---|---|"]
    print("\n".join(lines))
    methods = list(list_map_methods())
    context = multiprocessing.get_context("spawn")
    for name in args.models:
        for method in [*methods, *REFERENCES]:
            with context.Pool(1) as pool:  # a fresh process each: its memory high-water mark is this method's
                try:
                    seconds, peak = pool.apply(measure, (name, method, args.batch, args.size, args.repeats,
                                                         args.device))
                except ImportError as error:
                    print(f"{method} skipped: {error} (pip install -e '.[bench]')", file=sys.stderr)
                    continue
            lines.append(f"| {name} | {method} | {seconds:.3f} | {args.batch / seconds:.0f} | {peak:.0f} |")
            print(lines[-1], flush=True)
    if args.csv:
        write_tables_csv("\n".join(lines), args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
