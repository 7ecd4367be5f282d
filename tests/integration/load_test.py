"""`millions load` against `millions single`: closed and open loop finish in their time, print
the table, write the JSON summary, and see no server errors. Errors never count as throughput:
a server that stops answering mid-run shows as errors by kind, a lower successes/s, and a
non-zero exit under --max-errors 0."""
import json
import os
import subprocess
import tempfile

from harness import Checks, Server, binary, wait_for

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
        c.check("ok/s" in p.stderr, f"{name} loop shows progress")
        summary = json.load(open(out))
        c.check(summary["requests"] > 0, f"{name} loop made requests")
        bad = {k: v for k, v in summary["by_status"].items() if k == "conn_error" or k.startswith("5")}
        c.eq(bad, {}, f"{name} loop: no server or connection errors")
        c.eq(summary["successes"] + summary["errors"], summary["requests"], f"{name}: every request counted once")
        c.check(abs(summary["rps"] * summary["seconds"] - summary["successes"]) < 1,
                f"{name}: rps is successes per second")
        timeline = summary.get("timeline", [])
        c.check(2 <= len(timeline) <= 3 and all(len(p) == 2 for p in timeline),
                f"{name}: a timeline of one [successes, errors] pair per second: {timeline}")
        c.check(0 < sum(p[0] for p in timeline) <= summary["successes"],
                f"{name}: the timeline's successes are the run's")
        if name == "open":
            c.check(800 <= summary["requests"] <= 1000, f"open loop keeps its rate: {summary['requests']}")
    # The server dies a second into a 4-second run: the rest are connection errors, which must not
    # raise the rate, and --max-errors 0 turns them into exit 1.
    out = os.path.join(tmp, "dies.json")
    p = subprocess.Popen([binary(), "load", "--target", f"http://127.0.0.1:{srv.port}", "--users", "4",
                          "--duration", "4", "--rate", "200", "--max-errors", "0", "--json", out],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    def served():
        text = srv.request("GET", "/metrics")[2].decode()
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith("millions_http_requests_total{") and "/api/" in l)
    base = served()
    wait_for(lambda: served() > base + 100, 30)  # the timed part of the run has begun
    srv.kill()
    _, err = p.communicate(timeout=120)
    summary = json.load(open(out))
    kinds = summary["errors_by_kind"]
    c.check(summary["errors"] > 0 and set(kinds) <= {"connect_error", "io_error", "timeout"},
            f"a dead server shows as transport errors: {kinds}")
    c.eq(summary["errors"], sum(kinds.values()), "errors by kind add up")
    c.check(summary["rps"] < summary["attempts_rps"], "errors do not count as successes/s")
    c.eq(p.returncode, 1, "--max-errors 0 fails the run")
    c.check("more than --max-errors" in err, "and says why")
    p = subprocess.run([binary(), "load", "--users", "0"], capture_output=True, text=True)
    c.eq(p.returncode, 2, "bad flags are a usage error")
finally:
    srv.stop()
c.finish()
