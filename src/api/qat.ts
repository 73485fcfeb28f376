/** `qb.qat`: quantization-aware training of a prepared model in QAT state. */
export { qat as train, qatStep as step, mseLoss, type LossFn } from "../workflow/qat";
