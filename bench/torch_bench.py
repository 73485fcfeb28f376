"""The same steps as bench.ts, in PyTorch, for the time ratios `npm run bench` prints.

Prints one JSON object: {name: median milliseconds}. Run by bench.ts when torch imports.
"""
import json
import os
import statistics
import sys
import time

import torch

torch.set_num_threads(2)
torch.manual_seed(0)
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def median_ms(fn, runs=RUNS):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def scale_of(mn, mx, qmax):
    return max(max(-min(mn, 0.0), max(mx, 0.0)) / ((2 * qmax + 1) / 2), 1.1920928955078125e-07)


def mse_observe(x, qmax=32767):
    """The MSE observer's per-batch search: 95 shrunk ranges, lowest L2 error."""
    mn, mx = float(x.min()), float(x.max())
    best, pick = None, 0
    for i in range(95):
        f = 1 - 0.01 * i
        s = scale_of(mn * f, mx * f, qmax)
        err = float(((torch.fake_quantize_per_tensor_affine(x, s, 0, -qmax - 1, qmax) - x).double() ** 2).sum())
        if best is None or err <= best:
            best, pick = err, i
    return pick


def minmax_per_channel(w, qmax=127):
    return torch.clamp(torch.maximum(-w.min(dim=1).values, w.max(dim=1).values) / ((2 * qmax + 1) / 2), min=1.1920928955078125e-07)


def calibration_pass(sd, x):
    """One calibration forward of the article model: MSE observers on every activation (the
    LayerNorm as its sub-ops), per-channel MinMax on weights, as quantbook does."""
    def linear(h, name):
        minmax_per_channel(sd[name + ".weight"])
        y = torch.nn.functional.linear(h, sd[name + ".weight"], sd[name + ".bias"])
        return y

    mse_observe(x)
    h = linear(x, "linear1"); mse_observe(h)
    mean = h.mean(-1, keepdim=True); mse_observe(mean)
    diff = h - mean; mse_observe(diff)
    sq = diff * diff; mse_observe(sq)
    var = sq.mean(-1, keepdim=True); mse_observe(var)
    ve = var + 1e-5; mse_observe(ve)
    r = torch.rsqrt(ve); mse_observe(r)
    n = diff * r; mse_observe(n)
    minmax_per_channel(sd["layernorm.weight"].reshape(-1, 1))
    n = n * sd["layernorm.weight"]; mse_observe(n)
    n = n + sd["layernorm.bias"]; mse_observe(n)
    h = torch.relu(n); mse_observe(h)
    h = linear(h, "linear2"); mse_observe(h)
    return linear(h, "linear3")


def article_forward(sd, x, point=None, scales=None, record=None):
    """The article model with its ops named as quantbook names them; fake-quantizes only `point`
    (an op output name, or "<op>.weight"), records output ranges into `record`."""
    def out(name, t):
        if record is not None:
            record[name] = max(float(t.abs().max()), 1e-8) / 32767.5
        if point == name:
            return torch.fake_quantize_per_tensor_affine(t, scales[name], 0, -32768, 32767)
        return t

    def weight(name, w):
        if point == name + ".weight":
            s = minmax_per_channel(w.reshape(w.shape[0], -1))
            return torch.fake_quantize_per_channel_affine(w, s, torch.zeros(w.shape[0], dtype=torch.int32), 0, -128, 127)
        return w

    h = out("quant", x)
    h = out("linear1", torch.nn.functional.linear(h, weight("linear1", sd["linear1.weight"]), sd["linear1.bias"]))
    mean = out("layernorm.var_mean.pre_mean", h.mean(-1, keepdim=True))
    diff = out("layernorm.var_mean.sub", h - mean)
    var = out("layernorm.var_mean.post_mean", out("layernorm.var_mean.mul", diff * diff).mean(-1, keepdim=True))
    r = out("layernorm.rsqrt", torch.rsqrt(out("layernorm.add_eps", var + 1e-5)))
    n = out("layernorm.norm_mul", diff * r)
    n = out("layernorm.weight_mul", n * weight("layernorm.weight_mul", sd["layernorm.weight"]))
    n = out("layernorm.bias_add", n + sd["layernorm.bias"])
    h = out("relu", torch.relu(n))
    h = out("linear2", torch.nn.functional.linear(h, weight("linear2", sd["linear2.weight"]), sd["linear2.bias"]))
    return torch.nn.functional.linear(h, weight("linear3", sd["linear3.weight"]), sd["linear3.bias"])


def sensitivity(sd, x):
    """The debug tool's algorithm: one point fake-quantized at a time, L1 against float, sorted."""
    scales = {}
    ref = article_forward(sd, x, record=scales)
    points = list(scales) + [n + ".weight" for n in ("linear1", "layernorm.weight_mul", "linear2", "linear3")]
    rows = [(p, float((article_forward(sd, x, p, scales) - ref).abs().mean())) for p in points]
    return sorted(rows, key=lambda r: -r[1])


def model_steps(runs):
    """The bench models (bench_models.py: ResNet-18 and MobileNetV3-Small at 1x3x224x224, a U-Net
    at 1x3x512x512): float forward; a calibration pass with the MSE observer on every leaf
    module's output and per-channel MinMax on every weight; sensitivity: for each point (a leaf
    module output, or a weight) the whole model with only that point fake-quantized
    (torch.fake_quantize_per_tensor_affine / per_channel), L1 against float."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_models import bench_models
    out = {}
    for name, model, shape in bench_models():
        x = torch.rand(*shape) * 2 - 1
        leaves = [(n, m) for n, m in model.named_modules() if len(list(m.children())) == 0 and not isinstance(m, torch.nn.Dropout)]
        weights = [(n, m) for n, m in leaves if getattr(m, "weight", None) is not None and m.weight.dim() > 1]
        state = {"point": None, "scales": {}}

        def hook(n):
            def f(_m, _i, y):
                if state["point"] in ("calib", "minmax"):
                    state["scales"][n] = scale_of(float(y.min()), float(y.max()), 32767)
                    if state["point"] == "calib":
                        mse_observe(y)
                elif state["point"] == n:
                    return torch.fake_quantize_per_tensor_affine(y, state["scales"][n], 0, -32768, 32767)
            return f

        handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
        with torch.no_grad():
            out[name + ": float forward"] = median_ms(lambda: model(x), runs=max(runs, 3))

            def calib(mode):
                """One calibration pass: per-channel MinMax weights, then every leaf output observed ("calib": MSE, "minmax")."""
                state["point"] = mode
                for _n, m in weights:
                    minmax_per_channel(m.weight.reshape(m.weight.shape[0], -1))
                model(x)
                state["point"] = None

            out[name + ": calibration pass"] = median_ms(lambda: calib("calib"), runs=runs)
            out[name + ": calibration pass, MinMax"] = median_ms(lambda: calib("minmax"), runs=max(runs, 3))

            def sens():
                ref = model(x)
                rows = []
                for n, _m in leaves:
                    state["point"] = n
                    rows.append((n, float((model(x) - ref).abs().mean())))
                state["point"] = None
                for n, m in weights:
                    w = m.weight.data.clone()
                    s = minmax_per_channel(w.reshape(w.shape[0], -1))
                    m.weight.data = torch.fake_quantize_per_channel_affine(w, s, torch.zeros(w.shape[0], dtype=torch.int32), 0, -128, 127)
                    rows.append((n + ".weight", float((model(x) - ref).abs().mean())))
                    m.weight.data = w
                return sorted(rows, key=lambda r: -r[1])

            out[name + ": sensitivity"] = median_ms(sens, runs=runs)
        for h in handles:
            h.remove()
    return out


def main():
    sd = torch.load(os.path.join(FIX, "float-checkpoint.ckpt"))
    x = torch.load(os.path.join(FIX, "random_data.pt"))
    w = sd["linear2.weight"]
    with torch.no_grad():
        h = torch.relu(torch.nn.functional.layer_norm(torch.nn.functional.linear(x, sd["linear1.weight"], sd["linear1.bias"]), (256,),
                                                      sd["layernorm.weight"], sd["layernorm.bias"]))
        mul = h.reshape(2, 100, 1, 256) * w.reshape(1, 1, 60, 256)
        out = {
            "fake-quant int16 [2,100,60,256]": median_ms(lambda: torch.fake_quantize_per_tensor_affine(mul, 0.01, 0, -32768, 32767)),
            "calibration pass, article model": median_ms(lambda: calibration_pass(sd, x)),
            "MSE observer on the mul output": median_ms(lambda: mse_observe(mul), runs=max(1, RUNS // 2)),
            "sensitivity, article model": median_ms(lambda: sensitivity(sd, x)),
        }
        if os.environ.get("BENCH_MODELS") != "0":
            out.update(model_steps(int(os.environ.get("BENCH_MODEL_RUNS", "1"))))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
