"""Exports full-width torchvision ResNet-18 and MobileNetV3-Small (random weights, seed 0) to ONNX
for `npm run bench` (not committed: they are 45 MB and 10 MB). usage: export_models.py OUT_DIR"""
import os
import sys

import torch
import torchvision

out = sys.argv[1]
torch.manual_seed(0)
x = torch.randn(1, 3, 224, 224)
for name, make in (("resnet18", torchvision.models.resnet18), ("mobilenet_v3_small", torchvision.models.mobilenet_v3_small)):
    model = make().eval()
    torch.onnx.export(model, x, os.path.join(out, f"{name}.onnx"), opset_version=13, input_names=["input"], output_names=["output"])
print("ok")
