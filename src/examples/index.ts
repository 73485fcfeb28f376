export { SmallModel, SmallModelMulSum } from "./articleModel";
