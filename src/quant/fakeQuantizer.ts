import * as tf from "@tensorflow/tfjs";
import type { QuantDType } from "./dtypes";
import { fakeQuantize, type RoundMode } from "./fakeQuantize";
import { NonFiniteError, type Observer, type ObserverSnapshot } from "./observers/observer";
import { FakeQuantState } from "./state";
import { errors } from "../messages";

/**
 * One quantization point of a prepared model (an op's output, input or weight): an observer,
 * a dtype and the model's state. `observerEnabled` / `fakeQuantEnabled` let debug tools switch
 * single points on or off independently of the state.
 */
export class FakeQuantizer {
  state: FakeQuantState = FakeQuantState.FLOAT;
  roundMode: RoundMode = "half_even";
  /** Per-point overrides used by analysis tools; null follows the state. */
  fakeQuantOverride: boolean | null = null;
  /** A scale to use instead of the observer's (the scale explorer tries settings with it). */
  scaleOverride: Float64Array | null = null;

  constructor(
    /** Where this point is, e.g. "linear2.weight" or "linear2" (its output). */
    readonly where: string,
    readonly dtype: QuantDType,
    readonly observer: Observer,
  ) {}

  get axis(): number | undefined {
    return this.observer.axis;
  }

  /** Whether fake quantization is applied in the current state. */
  get quantizing(): boolean {
    if (this.fakeQuantOverride !== null) return this.fakeQuantOverride;
    return this.state === FakeQuantState.VALIDATION || this.state === FakeQuantState.QAT;
  }

  get observing(): boolean {
    return this.state === FakeQuantState.CALIBRATION || this.state === FakeQuantState.QAT;
  }

  /** Current scale(s); null when the observer has seen no data and the scale is not fixed. */
  scale(): Float64Array | null {
    return this.scaleOverride ?? this.observer.scale();
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (this.observing) {
      try {
        this.observer.observe(x);
      } catch (e) {
        if (e instanceof NonFiniteError) {
          throw errors.nonFiniteData(this.where, e.message);
        }
        throw e;
      }
    }
    if (!this.quantizing) return x;
    const scale = this.scale();
    if (scale === null) {
      throw errors.notCalibrated("forward", [this.where]);
    }
    return fakeQuantize(x, {
      scale: this.axis === undefined ? scale[0] : scale,
      dtype: this.dtype,
      axis: this.axis,
      roundMode: this.roundMode,
    });
  }

  /** Puts x on this point's grid when quantizing, without observing it (a value a passthrough op inserted). */
  regrid(x: tf.Tensor): tf.Tensor {
    const scale = this.quantizing ? this.scale() : null;
    if (scale === null) return x;
    return fakeQuantize(x, {
      scale: this.axis === undefined ? scale[0] : scale,
      dtype: this.dtype,
      axis: this.axis,
      roundMode: this.roundMode,
    });
  }

  snapshot(): ObserverSnapshot {
    return this.observer.snapshot();
  }

  restore(s: ObserverSnapshot): void {
    this.observer.restore(s);
  }
}
