export { replaceLinearWithBroadcastMulSum, BroadcastMulSumLinear } from "./linearToMulSum";
