import * as path from "node:path";

/**
 * Path of a file shipped with quantbook's test fixtures (made by test/fixtures/make_fixtures.py
 * with PyTorch): "float-checkpoint.ckpt" (the article model's float weights) and
 * "random_data.pt" (its [2, 100, 256] example input), wherever the caller's working directory is.
 */
export function fixturePath(name: string): string {
  return path.join(__dirname, "..", "..", "..", "test", "fixtures", name);
}
