"""Hand-built models whose true attention is known, for map tests."""

from __future__ import annotations

import torch
from torch import nn


class RedDetector(nn.Module):
    """Class 1 = "there is red": logits ``(-s, s)`` with ``s`` the average of ``relu(R - G - 0.3)``.

    Only strongly red pixels change the output (the threshold also keeps a mean-colour blend from
    imitating them), so every faithful map must sit on the red object.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.relu = nn.ReLU(inplace=True)
        self.mix = nn.Conv2d(2, 2, 3, padding=1, bias=False)
        self.relu2 = nn.ReLU()
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0], self.conv.weight[0, 1] = 1.0, -1.0  # R - G
            self.conv.weight[1, 1], self.conv.weight[1, 0] = 1.0, -1.0  # G - R (a distractor channel)
            self.conv.bias.fill_(-0.3)
            self.mix.weight.zero_()
            self.mix.weight[0, 0, 1, 1] = self.mix.weight[1, 1, 1, 1] = 1.0
            self.head.weight.copy_(torch.tensor([[-40.0, 0.0], [40.0, 0.0]]))
            self.head.bias.zero_()

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.bn(self.relu2(self.mix(self.relu(self.conv(images)))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features.mean(dim=(2, 3)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(images))


def red_square_scenes(batch: int = 6, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey noisy backgrounds with one red square each, and the squares' masks."""
    generator = torch.Generator().manual_seed(seed)
    images = 0.4 + 0.1 * torch.rand(batch, 1, size, size, generator=generator).expand(batch, 3, size, size).clone()
    masks = torch.zeros(batch, 1, size, size)
    for i in range(batch):
        top, left = torch.randint(0, size - 10, (2,), generator=generator).tolist()
        masks[i, 0, top : top + 10, left : left + 10] = 1
        images[i, 0, top : top + 10, left : left + 10] = 0.9
        images[i, 1:, top : top + 10, left : left + 10] = 0.1
    return images, masks
