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
        {"code": '"quant" + "book"', "result": "'quantbook'"},
        {"code": "[1, 2, 3].length", "result": "3"},
    ]
    code_display_data = [
        {"code": 'require("quantbook").display.show({ [Symbol.for("Jupyter.display")]: () => ({ "text/html": "<b>hi</b>", "text/plain": "hi" }) })', "mime": "text/html"},
        {"code": 'const tslab = require("tslab"); tslab.display.html("<i>x</i>")', "mime": "text/html"},
    ]
    code_history_pattern = "6 *"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "Math.abs"
    code_clear_output = 'require("quantbook").display.clear()'

    # --- the kernel survives what user code leaves behind (issue: the kernel loses the user's work)

    def run_cell(self, code, timeout=30):
        self.flush_channels()
        reply, outputs = self.execute_helper(code=code, timeout=timeout)
        return reply["content"], outputs

    def value(self, code):
        content, outputs = self.run_cell(code)
        self.assertEqual(content["status"], "ok", outputs)
        results = [o for o in outputs if o["msg_type"] == "execute_result"]
        self.assertEqual(len(results), 1, outputs)
        return results[0]["content"]["data"]["text/plain"]

    def test_survives_stray_promises_and_timer_throws(self):
        self.run_cell("const survivor = 41;")
        for code in [
            'const p = require("quantbook").io.loadTorch("nope.ckpt"); "started"',
            'async function late() { await new Promise((r) => setTimeout(r, 50)); throw new Error("late"); }\nlate(); console.log("cell done")',
            'setTimeout(() => { throw new Error("timer boom"); }, 10); "scheduled"',
        ]:
            content, _ = self.run_cell(code)
            self.assertEqual(content["status"], "ok")
            self.run_cell("await new Promise((r) => setTimeout(r, 200));")
            self.assertEqual(self.value("survivor + 1"), "42")
        content, outputs = self.run_cell('Promise.reject(new Error("rejected value"))')
        self.assertEqual(content["status"], "error")
        self.assertEqual(content["evalue"], "rejected value")
        self.assertEqual(self.value("survivor + 1"), "42")

    def test_failed_cell_keeps_what_it_declared(self):
        content, _ = self.run_cell('const declaredBefore = 123;\nthrow new Error("x");')
        self.assertEqual(content["status"], "error")
        self.assertEqual(self.value("declaredBefore"), "123")

    def test_traceback_names_the_cell_line(self):
        content, _ = self.run_cell('function thrower() {\n  throw new Error("deep");\n}\nthrower();')
        self.assertEqual(content["status"], "error")
        tb = "\n".join(content["traceback"])
        self.assertRegex(tb, r"at thrower \(cell \d+, line 2\)")

    def test_interrupt_stops_a_synchronous_loop(self):
        # the kernelspec says interrupt_mode "message": jupyter_client sends interrupt_request on control
        self.flush_channels()
        msg_id = self.kc.execute("while (true) {}")
        import time
        time.sleep(0.5)
        self.km.interrupt_kernel()
        reply = self.kc.get_shell_msg(timeout=20)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "KeyboardInterrupt")
        self.assertEqual(self.value("6 * 7"), "42")

    def test_many_printed_lines_all_arrive(self):
        content, outputs = self.run_cell('for (let i = 0; i < 20000; i++) console.log("line " + i);', timeout=60)
        self.assertEqual(content["status"], "ok")
        text = "".join(o["content"]["text"] for o in outputs if o["msg_type"] == "stream")
        self.assertEqual(text, "".join("line %d\n" % i for i in range(20000)))


if __name__ == "__main__":
    unittest.main()
