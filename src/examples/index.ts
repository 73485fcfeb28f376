export { SmallModel, SmallModelMulSum } from "./articleModel";
export { GatedMulSum } from "./gatedModel";
