/**
 * `qb.qconfig`: what quantizes how. A qconfig says the dtypes and observers of one op; setters
 * assign qconfigs by module name, op type or sensitivity; templates apply the reference
 * toolchain's defaults to every op a setter left open.
 */
export { getQconfig, type QConfig, type GetQconfigOptions } from "../quant/qconfig";
export {
  calibration8bitWeight16bitActQconfigSetter,
  defaultCalibrationQconfigSetter,
  qat8bitWeight16bitActQconfigSetter,
  defaultQatQconfigSetter,
  ModuleNameQconfigSetter,
  OpTypeQconfigSetter,
  FixedScaleQconfigSetter,
  calibrationTemplate,
  type QconfigSetter,
} from "../workflow/qconfigSetters";
export { sensitiveOpQconfigSetter, type SensitiveSetterOptions } from "../analysis/sensitiveSetter";
