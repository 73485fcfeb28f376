/**
 * What a file is, from its first bytes: for a loader handed the wrong kind of file, a message
 * that names the format and the loader (or export step) that takes it, instead of a decode error.
 */

/** The format of `bytes` and what to do with it, or null when it looks like none of the known non-ONNX formats. */
export function sniffFormat(bytes: Uint8Array): { format: string; advice: string } | null {
  // one character per byte, for any length (spreading 64 KB into fromCharCode can overflow the stack)
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const ascii = (from: number, to: number) => buf.toString("latin1", from, Math.min(to, bytes.length));
  if (bytes.length === 0)
    return { format: "an empty file", advice: "the download or copy did not finish; fetch the file again" };
  if (ascii(0, 40).startsWith("version https://git-lfs.github.com/spec")) {
    return {
      format: "a Git LFS pointer, not the file itself",
      advice: "run `git lfs pull` in the repository (or download the file from the LFS server)",
    };
  }
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    // names of the archive's entries, enough to tell TorchScript from torch.save and from Keras
    const head = ascii(0, Math.min(bytes.length, 1 << 16));
    if (/\/code\/|constants\.pkl/.test(head)) {
      return {
        format: "a TorchScript archive (torch.jit.save)",
        advice: "export the model to ONNX in Python (torch.onnx.export(model, example, 'model.onnx')), then load that",
      };
    }
    if (/data\.pkl/.test(head)) {
      return {
        format: "a PyTorch checkpoint (torch.save, zip)",
        advice:
          "read its tensors with qb.io.loadTorch(path) (a state dict for qb.nn models); for the graph, export it with torch.onnx.export",
      };
    }
    if (/config\.json|model\.weights\.h5/.test(head))
      return { format: "a Keras archive (.keras)", advice: "convert it to ONNX with tf2onnx, then load that" };
    return { format: "a zip archive", advice: "unpack it; if it holds a model, load the .onnx inside" };
  }
  if (bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) {
    return {
      format: "a Python pickle (a legacy torch.save file?)",
      advice: "read it with qb.io.loadTorch(path); for the graph, export the model with torch.onnx.export",
    };
  }
  if (ascii(4, 8) === "TFL3")
    return {
      format: "a TensorFlow Lite model",
      advice: "convert it to ONNX with `python -m tf2onnx.convert --tflite model.tflite --output model.onnx`",
    };
  if (ascii(0, 8) === "\x89HDF\r\n\x1a\n")
    return { format: "an HDF5 file (a Keras .h5 model?)", advice: "convert it to ONNX with tf2onnx, then load that" };
  if (bytes.length >= 10) {
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    if (n > 1 && n < bytes.length && bytes[8] === 0x7b /* { */) {
      return {
        format: "a safetensors file",
        advice: "read its tensors with qb.io.loadSafetensors(path); for the graph, export the model to ONNX",
      };
    }
  }
  // mostly printable: a text file (JSON, YAML, a script, an HTML error page saved as the model)
  const sample = bytes.subarray(0, 512);
  const printable = sample.filter((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127)).length;
  if (printable > 0.95 * sample.length) {
    const first = ascii(0, 60).split("\n")[0];
    return {
      format: `a text file (it starts "${first}")`,
      advice: "check the path: this is not a model file (an HTML page saved by a failed download looks like this too)",
    };
  }
  return null;
}
