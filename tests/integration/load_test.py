"""`millions load` against `millions single`: closed and open loop finish in their time, print
the table, write the JSON summary, and see no server errors."""
import json
import os
import subprocess
import tempfile

from harness import Checks, Server, binary

c = Checks()
srv = Server().start()
tmp = tempfile.mkdtemp()
try:
    for name, extra in (("closed", []), ("open", ["--rate", "300"])):
        out = os.path.join(tmp, name + ".json")
        p = subprocess.run([binary(), "load", "--target", f"http://127.0.0.1:{srv.port}", "--users",
                            "4", "--duration", "3", "--json", out] + extra,
                           capture_output=True, text=True, timeout=120)
        c.eq(p.returncode, 0, f"{name} loop exits 0: {p.stderr[-500:]}")
        c.check("p99 ms" in p.stdout and "by status" in p.stdout, f"{name} loop prints the table")
        c.check("req/s" in p.stderr, f"{name} loop shows progress")
        summary = json.load(open(out))
        c.check(summary["requests"] > 0, f"{name} loop made requests")
        bad = {k: v for k, v in summary["by_status"].items() if k == "conn_error" or k.startswith("5")}
        c.eq(bad, {}, f"{name} loop: no server or connection errors")
        if name == "open":
            c.check(800 <= summary["requests"] <= 1000, f"open loop keeps its rate: {summary['requests']}")
    p = subprocess.run([binary(), "load", "--users", "0"], capture_output=True, text=True)
    c.eq(p.returncode, 2, "bad flags are a usage error")
finally:
    srv.stop()
c.finish()
