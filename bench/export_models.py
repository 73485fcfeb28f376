"""Exports the bench models (bench_models.py: torchvision ResNet-18 and MobileNetV3-Small at
224x224, a U-Net at 512x512; seeded random weights) to ONNX for `npm run bench` (not committed:
45 MB and 10 MB). Writes OUT_DIR/<name>.onnx and OUT_DIR/index.json (input shapes).
usage: export_models.py OUT_DIR"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import bench_models  # noqa: E402

out = sys.argv[1]
index = {}
for name, model, shape in bench_models():
    x = torch.randn(*shape)
    torch.onnx.export(model, x, os.path.join(out, f"{name}.onnx"), opset_version=13, input_names=["input"], output_names=["output"])
    index[name] = list(shape)
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump(index, f)
print("ok")
