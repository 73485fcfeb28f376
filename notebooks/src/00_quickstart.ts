// %% [markdown]
// # 00 · Quick start
//
// quantbook simulates the quantization that Horizon's toolchain applies before a model runs on a
// Journey 6 BPU (J6E / J6M, march `NASH_E` / `NASH_M`). The flow has five steps, the same as on the
// real toolchain:
//
// ```
// float model ─► prepare ─► CALIBRATION (observers watch data) ─► VALIDATION (fake-quantized)
//                                                                   └─► export ─► convert (chip rules, integer model) ─► perf
// ```
//
// This notebook walks the flow on a model small enough to read in one cell. The later notebooks
// apply it to a case where quantization goes wrong.

// %%
import * as tf from "@tensorflow/tfjs";
import * as qb from "quantbook";

await qb.backend.init();
qb.setMarch(qb.March.NASH_M); // the target chip, set before prepare
qb.backend.active();

// %% [markdown]
// A model is a `qb.nn.Module` subclass, written the way a PyTorch model is: its fields are its
// layers (their names become the op names in every table), and `forward` says how data flows.
// Float data enters the quantized part through a `QuantStub` and leaves through a `DeQuantStub`.

// %%
class TinyNet extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  fc1 = new qb.nn.Linear(8, 16);
  act = new qb.nn.ReLU();
  fc2 = new qb.nn.Linear(16, 4);
  dequant = new qb.nn.DeQuantStub();
  forward(x: tf.Tensor): tf.Tensor {
    const h = this.act.forward(this.fc1.forward(this.quant.forward(x)));
    return this.dequant.forward(this.fc2.forward(h));
  }
}

qb.nn.manualSeed(0);
const model = new TinyNet().eval();
const data = tf.randomNormal([64, 8], 0, 1, "float32", 1);
const floatOut = model.forward(data);
model;

// %% [markdown]
// `prepare` copies the model, runs it once to find every op, and attaches fake-quantizers as
// the qconfig setters say. The template used here is the common starting point on J6: weights in
// int8 (one scale per output channel), activations in int16. The float model is left untouched,
// so it stays available as the reference.

// %%
const calib = qb.prepare(model, data, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
qb.analysis.quantSummary(calib);

// %% [markdown]
// Calibration runs data through the model while observers record the value ranges; nothing is
// quantized yet. VALIDATION then freezes the scales and fake-quantizes every tensor: the output
// now carries the rounding the chip will do.

// %%
qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
await qb.calibrate(calib, [data]);
qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
const quantOut = calib.forward(data);
const err = tf.tidy(() => tf.max(tf.abs(tf.sub(quantOut, floatOut))).dataSync()[0]);
console.log(`max |quantized - float| = ${err.toExponential(3)}`);
qb.analysis.quantSummary(calib); // now with the calibrated scales

// %% [markdown]
// The last steps check the chip's rules, build an integer-only model (int8/int16 codes, int32
// accumulators) and estimate latency. The estimate comes from an analytic model of the chip, not
// from a measurement: use it to compare configurations.

// %%
const ir = qb.export(calib, data);
const hb = qb.convert(ir, qb.March.NASH_M);
const intOut = hb.forward(data);
const intErr = tf.tidy(() => tf.max(tf.abs(tf.sub(intOut, quantOut))).dataSync()[0]);
console.log(`max |integer model - fake-quant model| = ${intErr.toExponential(3)}`);
qb.march.perf(hb);
