"""ImageNet-9 ("Backgrounds Challenge") variants built from foreground masks, and BG-Gap.

Follows Xiao et al. (ICLR 2021) as documented in ``benchmarks_and_metrics.md`` section 1.2: Only-BG-T fills the
object's bounding box by tiling the largest margin strip, and the Mixed-* variants paste the foreground onto
the Only-BG-T background of another image of the same class (Mixed-Same), of a random class (Mixed-Rand) or
of class ``(y + 1) mod K`` (Mixed-Next). Because exact masks are known here, compositing uses the mask
(``m * fg + (1 - m) * bg``, as Waterbirds does) instead of IN-9's black-pixel test.

The compositing primitives live in :mod:`robusttrain.transforms.compositing` (training uses them too).
"""

from __future__ import annotations

import torch

from ..transforms.compositing import check_pair, composite, no_fg, only_bg_black, only_bg_tiled, only_fg

VARIANTS = ("original", "only_fg", "no_fg", "only_bg_b", "only_bg_t", "mixed_same", "mixed_rand", "mixed_next")


def pick_backgrounds(
    targets: torch.Tensor, indices: torch.Tensor, pool_targets: torch.Tensor, num_classes: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Pool positions of the background each sample gets in Mixed-Same, Mixed-Rand and Mixed-Next.

    The choice depends only on ``(seed, sample index)``, not on batching or ranks, so results are reproducible.

    Raises:
        ValueError: the pool has no image of a class that is needed.
    """
    by_class = [torch.nonzero(pool_targets == c).flatten() for c in range(num_classes)]
    picks: dict[str, list[int]] = {"mixed_same": [], "mixed_rand": [], "mixed_next": []}
    for y, index in zip(targets.tolist(), indices.tolist(), strict=True):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + int(index))
        rand_class = int(torch.randint(num_classes, (1,), generator=generator))
        for name, cls in (("mixed_same", y), ("mixed_rand", rand_class), ("mixed_next", (y + 1) % num_classes)):
            candidates = by_class[cls]
            if len(candidates) == 0:
                raise ValueError(f"background pool has no image of class {cls}, needed for {name}")
            picks[name].append(int(candidates[torch.randint(len(candidates), (1,), generator=generator)]))
    return {name: torch.tensor(p, dtype=torch.long) for name, p in picks.items()}


def make_variants(
    images: torch.Tensor,
    masks: torch.Tensor,
    targets: torch.Tensor,
    indices: torch.Tensor,
    pool_backgrounds: torch.Tensor,
    pool_targets: torch.Tensor,
    num_classes: int,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Every variant of ``VARIANTS`` for one batch. ``pool_backgrounds`` are Only-BG-T images ``(N, 3, H, W)``."""
    check_pair(images, masks)
    picks = pick_backgrounds(targets.cpu(), indices.cpu(), pool_targets.cpu(), num_classes, seed)
    pool_backgrounds = pool_backgrounds.to(images.device)
    out = {
        "original": images,
        "only_fg": only_fg(images, masks),
        "no_fg": no_fg(images, masks),
        "only_bg_b": only_bg_black(images, masks),
        "only_bg_t": only_bg_tiled(images, masks),
    }
    for name, positions in picks.items():
        out[name] = composite(images, masks, pool_backgrounds[positions.to(images.device)])
    return out
