#!/usr/bin/python3
"""Exports torchvision's architectures (random weights, no download) and two attention models at
ONNX opsets 9, 11, 13 and 17 into a folder, with each example input beside its file; `npm run zoo`
then imports every file and checks it against onnxruntime and through the whole workflow.

    /usr/bin/python3 bench/onnx_zoo.py OUT_DIR [model ...]
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torchvision

torch.manual_seed(0)
OUT = sys.argv[1] if len(sys.argv) > 1 else "tmp/zoo"
os.makedirs(OUT, exist_ok=True)
M = torchvision.models

class TinyBert(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(100, 32)
        self.pos = nn.Parameter(torch.randn(1, 16, 32) * 0.02)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu", batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, 3)
    def forward(self, ids):
        x = self.tok(ids) + self.pos
        x = self.enc(x)
        return self.head(self.norm(x[:, 0]))

class MHA(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 32)
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.out = nn.Linear(32, 5)
    def forward(self, x):
        h = self.proj(x)
        a, _ = self.attn(h, h, h, need_weights=False)
        return self.out(torch.softmax(a, -1) + h)

models = {
    "resnet18": (lambda: M.resnet18(), [1, 3, 64, 64]),
    "resnet50": (lambda: M.resnet50(), [1, 3, 64, 64]),
    "resnext50": (lambda: M.resnext50_32x4d(), [1, 3, 64, 64]),
    "mobilenet_v2": (lambda: M.mobilenet_v2(), [1, 3, 64, 64]),
    "mobilenet_v3_small": (lambda: M.mobilenet_v3_small(), [1, 3, 64, 64]),
    "mobilenet_v3_large": (lambda: M.mobilenet_v3_large(), [1, 3, 64, 64]),
    "efficientnet_b0": (lambda: M.efficientnet_b0(), [1, 3, 64, 64]),
    "shufflenet": (lambda: M.shufflenet_v2_x0_5(), [1, 3, 64, 64]),
    "squeezenet": (lambda: M.squeezenet1_1(), [1, 3, 64, 64]),
    "googlenet": (lambda: M.googlenet(aux_logits=False, init_weights=True), [1, 3, 64, 64]),
    "densenet121": (lambda: M.densenet121(), [1, 3, 64, 64]),
    "mnasnet": (lambda: M.mnasnet0_5(), [1, 3, 64, 64]),
    "regnet_y": (lambda: M.regnet_y_400mf(), [1, 3, 64, 64]),
    "convnext_tiny": (lambda: M.convnext_tiny(), [1, 3, 64, 64]),
    "lraspp": (lambda: M.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None), [1, 3, 64, 64]),
    "deeplab_mnv3": (lambda: M.segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=False), [1, 3, 64, 64]),
    "alexnet": (lambda: M.alexnet(), [1, 3, 224, 224]),
    "tinybert": (lambda: TinyBert(), "ids"),
    "mha": (lambda: MHA(), [2, 7, 8]),
}
only = sys.argv[2:] or list(models)
index = {}
for name in only:
    ctor, shape = models[name]
    m = ctor().eval()
    # BatchNorm statistics away from the identity, so folding them shows
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    x = torch.randint(0, 100, (2, 16)) if shape == "ids" else torch.randn(*shape)
    for opset in (9, 11, 13, 17):
        f = os.path.join(OUT, f"{name}_op{opset}.onnx")
        try:
            # not under no_grad: with gradients on, attention layers take the path that exports
            # (the inference fast path, _transformer_encoder_layer_fwd, has no ONNX form)
            torch.onnx.export(m, (x,), f, opset_version=opset, input_names=["input"], output_names=["output"], do_constant_folding=True)
            index[f"{name}_op{opset}"] = {"file": f, "shape": list(x.shape), "int": shape == "ids"}
            x.numpy().tofile(f + ".in")
            print("ok", name, opset, flush=True)
        except Exception as e:
            print("export failed", name, opset, str(e).splitlines()[0][:200], flush=True)
with open(os.path.join(OUT, "index.json"), "w") as f:
    json.dump(index, f, indent=1)
