"""jupyter_kernel_test against the quantbook kernel (run by test/jupyter.test.ts).

Set KERNEL_NAME to run the same suite against another kernelspec (e.g. vanilla tslab).
"""
import os
import unittest

import jupyter_kernel_test as jkt


class QuantbookKernelTests(jkt.KernelTests):
    kernel_name = os.environ.get("KERNEL_NAME", "quantbook")
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("oops")'
    completion_samples = [{"text": "Math.asi", "matches": {"asin", "asinh"}}]
    complete_code_samples = ["1 + 1", "const a = 1;", "function f() { return 1 }"]
    incomplete_code_samples = ["function f() {", "const a = [1,", "if (true) {"]
    invalid_code_samples = ["const = 5;", "let x = )"]
    code_generate_error = 'throw new Error("boom")'
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": '"quant" + "book"', "result": "quantbook"},
        {"code": "[1, 2, 3].length", "result": "3"},
    ]
    code_display_data = [
        {"code": 'require("quantbook").display({ [Symbol.for("Jupyter.display")]: () => ({ "text/html": "<b>hi</b>", "text/plain": "hi" }) })', "mime": "text/html"},
        {"code": 'const tslab = require("tslab"); tslab.display.html("<i>x</i>")', "mime": "text/html"},
    ]
    code_history_pattern = "6 *"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "Math.abs"
    code_clear_output = 'require("quantbook").clearOutput()'


if __name__ == "__main__":
    unittest.main()
