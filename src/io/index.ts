export { loadTorch, parseTorch, disposeAll } from "./torch";
export { loadSafetensors, saveSafetensors, parseSafetensors, serializeSafetensors } from "./safetensors";
export { saveIr, loadIr } from "./ir";
export { loadNpy, loadNpz, parseNpy, parseNpz } from "./numpy";
export { loadImage, decodeImage, resizeImage, imageTensor, type ImageOptions, type RgbImage } from "./images";
export { loadOnnx, buildOnnxModule, type LoadOnnxOptions } from "./onnx/load";
export { OnnxGraphModule } from "./onnx/graphModule";
