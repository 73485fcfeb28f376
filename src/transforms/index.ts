export { replaceLinearWithBroadcastMulSum, BroadcastMulSumLinear } from "./linearToMulSum";
export { fuseConvBn } from "./fuseConvBn";
