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

class MaskedEncoder(nn.Module):
    """BERT-style: token ids and an int64 padding mask in, an additive (1 − mask)·−10000 mask and a
    causal masked_fill(−inf) from a buffer inside two attention blocks."""

    def __init__(s, d=32, h=4, t=10):
        super().__init__()
        s.emb = nn.Embedding(50, d)
        s.blocks = nn.ModuleList([MaskedBlock(d, h, t) for _ in range(2)])
        s.head = nn.Linear(d, 4)

    def forward(s, ids, mask):
        x = s.emb(ids)
        for b in s.blocks:
            x = b(x, mask)
        return s.head(x)


class MaskedBlock(nn.Module):
    def __init__(s, d, h, t):
        super().__init__()
        s.h = h
        s.register_buffer("causal", torch.triu(torch.ones(t, t, dtype=torch.bool), 1))
        s.q, s.k, s.v, s.o = (nn.Linear(d, d) for _ in range(4))
        s.ln = nn.LayerNorm(d)

    def forward(s, x, mask):
        B, T, D = x.shape
        split = lambda t: t.view(B, T, s.h, D // s.h).transpose(1, 2)
        q, k, v = split(s.q(x)), split(s.k(x)), split(s.v(x))
        sc = q @ k.transpose(-1, -2) / (D // s.h) ** 0.5
        sc = sc.masked_fill(s.causal[:T, :T], float("-inf")) + (1.0 - mask[:, None, None, :].float()) * -10000.0
        y = (torch.softmax(sc, -1) @ v).transpose(1, 2).reshape(B, T, D)
        return s.ln(x + s.o(y))


class BEVSample(nn.Module):
    """A BEV-style block: features sampled at a grid plus predicted offsets (GridSample, opset 16+)."""

    def __init__(s):
        super().__init__()
        s.feat = nn.Conv2d(3, 8, 3, padding=1)
        s.off = nn.Conv2d(8, 2, 1)
        s.head = nn.Conv2d(8, 4, 1)

    def forward(s, x):
        f = torch.relu(s.feat(x))
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, 6), torch.linspace(-1, 1, 10), indexing="ij")
        base = torch.stack([xs, ys], -1)[None].expand(f.shape[0], 6, 10, 2)
        off = torch.nn.functional.adaptive_avg_pool2d(torch.tanh(s.off(f)), (6, 10)).permute(0, 2, 3, 1) * 0.2
        return s.head(torch.nn.functional.grid_sample(f, base + off, mode="bilinear", padding_mode="zeros", align_corners=False))


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
    "masked_encoder": (lambda: MaskedEncoder(), "ids+mask"),
    "bev_sample": (lambda: BEVSample(), [2, 3, 12, 20]),
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
    if shape == "ids":
        xs = [torch.randint(0, 100, (2, 16))]
    elif shape == "ids+mask":
        mask = torch.ones(2, 10, dtype=torch.long)
        mask[1, 7:] = 0
        xs = [torch.randint(0, 50, (2, 10)), mask]
    else:
        xs = [torch.randn(*shape)]
    names = ["input", "mask"][: len(xs)]
    for opset in (9, 11, 13, 17):
        f = os.path.join(OUT, f"{name}_op{opset}.onnx")
        try:
            # not under no_grad: with gradients on, attention layers take the path that exports
            # (the inference fast path, _transformer_encoder_layer_fwd, has no ONNX form)
            torch.onnx.export(m, tuple(xs), f, opset_version=opset, input_names=names, output_names=["output"], do_constant_folding=True)
            inputs = []
            for k, x in enumerate(xs):
                x.numpy().tofile(f"{f}.in{k}")
                inputs.append({"file": f"{f}.in{k}", "shape": list(x.shape), "int": x.dtype == torch.int64})
            index[f"{name}_op{opset}"] = {"file": f, "inputs": inputs}
            print("ok", name, opset, flush=True)
        except Exception as e:
            print("export failed", name, opset, str(e).splitlines()[0][:200], flush=True)
with open(os.path.join(OUT, "index.json"), "w") as f:
    json.dump(index, f, indent=1)
