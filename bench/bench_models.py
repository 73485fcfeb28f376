"""The models `npm run bench` times, shared by export_models.py (ONNX for quantbook) and
torch_bench.py (PyTorch doing the same steps)."""
import torch
import torch.nn.functional as F
from torch import nn


class UNet(nn.Module):
    """A U-Net-style segmentation net: four levels (16, 32, 64, 128 channels), two 3x3 conv +
    BatchNorm + ReLU per level, max-pool down, bilinear up, concatenated skips, a 1x1 head."""

    def __init__(self, widths=(16, 32, 64, 128), classes=2):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.down = nn.ModuleList()
        cin = 3
        for w in widths:
            self.down.append(block(cin, w))
            cin = w
        self.up = nn.ModuleList(block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x):
        skips = []
        for i, b in enumerate(self.down):
            x = b(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for b, s in zip(self.up, reversed(skips[:-1])):
            x = b(torch.cat([F.interpolate(x, size=s.shape[2:], mode="bilinear", align_corners=False), s], 1))
        return self.head(x)


def bench_models():
    """(name, model in eval mode with seeded weights, input shape)."""
    import torchvision
    torch.manual_seed(0)
    yield "resnet18", torchvision.models.resnet18().eval(), (1, 3, 224, 224)
    torch.manual_seed(0)
    yield "mobilenet_v3_small", torchvision.models.mobilenet_v3_small().eval(), (1, 3, 224, 224)
    torch.manual_seed(0)
    yield "unet512", UNet().eval(), (1, 3, 512, 512)
