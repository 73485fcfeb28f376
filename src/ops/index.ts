/**
 * The op registry with every op quantbook knows (each file under src/ops/ defines one op or a
 * small family). Import from here so every definition is loaded.
 */
import "./stubs";
import "./gemm";
import "./elementwise";
import "./reduce";
import "./activation";
import "./layout";
import "./norm";
import "./pool";
import "./resize";

export {
  allOps,
  defineOp,
  findOp,
  flopsOf,
  opDef,
  opTypes,
  weightAxisOf,
  type Attrs,
  type ChipUnit,
  type IntKernel,
  type OpDef,
  type QuantRole,
} from "./registry";
