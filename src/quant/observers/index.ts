export {
  Observer,
  NonFiniteError,
  type ObserverFactory,
  type ObserverOptions,
  type ObserverSnapshot,
} from "./observer";
export { MinMaxObserver } from "./minmax";
export { MSEObserver, MSE_CANDIDATES } from "./mse";
export { PercentileObserver } from "./percentile";
export { FixedScaleObserver } from "./fixedScale";
export { KLObserver, klThreshold, KL_BINS } from "./kl";
