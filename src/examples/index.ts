export { SmallModel, SmallModelMulSum } from "./articleModel";
export { GatedMulSum } from "./gatedModel";
export { fixturePath } from "./fixtures";
