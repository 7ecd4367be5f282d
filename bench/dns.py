"""bench/dns: our authoritative geo-DNS (`millions serve dns`, one io thread) beside PowerDNS
Authoritative 4.7 (bind back end, one receiver thread and one distributor thread) serving the
same zone, in the same run, with dnsperf (one thread) as the load.

Two queries, each sent by dnsperf with the same EDNS Client Subnet option (198.18.1.0/24, the
region "east") to both servers:
- static: `dns1.millions.test A`, a plain record on both sides (ours: a name server's address;
  PowerDNS: an A record in the zone file);
- geo: `www.millions.test A`. Ours: the geo-routed, health-checked answer (east prefers dc1; two
  real balancers run, checked every second). PowerDNS: a LUA `view()` record mapping the same
  subnets to the same addresses, with `edns-subnet-processing=yes` (its own health, `ifportup`,
  would add a check per answer set; view() alone is the cheaper of its geo answers).
Before the rounds each contender's answer is checked: the geo answer must be dc1's balancer on
both sides, the static one the same address.

ROUNDS rounds; each round runs the four contenders once, the order rotated from round to round;
DURATION seconds each, after a WARMUP run of each not counted. Printed per contender: queries/s
(median [min-max] spread), CPU microseconds per answered query (utime+stime of the server
process over the run / queries completed), dnsperf's average latency, and p99 latency from a
separate run in each round at a fixed rate (P99_QPS queries/s, or half what the contender
sustained in its warm-up when that is lower, for P99_SECONDS; every answer's latency from
dnsperf -v); then the ratios ours/PowerDNS per round. The run fails (`bench: FAIL`, exit 1) on a
lost query, any rcode but NOERROR, a wrong answer, or a server that exits. BENCH_SELFTEST=1
sends the static query for a name outside the zone (REFUSED on both): the run must exit 1.
Loopback only; bounded: about ROUNDS * 4 * (DURATION + P99_SECONDS) seconds plus set-up. Environment: ROUNDS
(3), DURATION (5), WARMUP (2), CLIENTS (dnsperf -c, 8), OUTSTANDING (dnsperf -q, 100), P99_QPS
(20000), P99_SECONDS (2), TIMEOUT (dnsperf -t, 10 s), BENCH_KEEP=1."""
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import cpu_seconds, fmt, ratio, run_main  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", 3))
DURATION = int(os.environ.get("DURATION", 5))
WARMUP = int(os.environ.get("WARMUP", 2))
CLIENTS = int(os.environ.get("CLIENTS", 8))
OUTSTANDING = int(os.environ.get("OUTSTANDING", 100))
P99_QPS = int(os.environ.get("P99_QPS", 20000))
P99_SECONDS = int(os.environ.get("P99_SECONDS", 2))
TIMEOUT = int(os.environ.get("TIMEOUT", 10))  # dnsperf -t: a query unanswered this long is lost
SELFTEST = os.environ.get("BENCH_SELFTEST") == "1"
BIN = os.environ.get("MILLIONS_BIN", "build/millions")
ZONE = "millions.test"
ECS = "8:00011800c61201"  # family 1, source /24, scope 0, 198.18.1
EAST, WEST = "127.0.3.1", "127.0.4.1"


class Failed(Exception):
    pass


WORK = tempfile.mkdtemp(prefix="millions-bench-dns-")
PROCS = []


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))  # free for UDP too
                return port
            except OSError:
                continue


def spawn(name, argv):
    log = open(os.path.join(WORK, name + ".log"), "ab")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    PROCS.append((name, p))
    return p


def wait_http(port, path, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise Failed(f"{what} not ready: {tail(what)}")


def tail(name):
    try:
        return open(os.path.join(WORK, name + ".log"), errors="replace").read()[-1500:]
    except OSError:
        return ""


def query(name, qid=7):
    """An A query with the bench's ECS option (source /24 of 198.18.1.0)."""
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    ecs = struct.pack(">HBB", 1, 24, 0) + bytes([198, 18, 1])
    opt = struct.pack(">HH", 8, len(ecs)) + ecs
    return q + b"\0" + struct.pack(">HHIH", 41, 1232, 0, len(opt)) + opt


def answer_addresses(port, name):
    """(rcode, sorted A addresses) of one UDP query."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(query(name), ("127.0.0.1", port))
        msg = s.recv(4096)
    rcode = msg[3] & 0xF
    an = struct.unpack(">H", msg[6:8])[0]
    pos = 12
    while msg[pos]:  # the question's name (uncompressed)
        pos += msg[pos] + 1
    pos += 5
    out = []
    for _ in range(an):
        if msg[pos] >= 0xC0:
            pos += 2
        else:
            while msg[pos]:
                pos += msg[pos] + 1
            pos += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[pos: pos + 10])
        pos += 10
        if rtype == 1:
            out.append(socket.inet_ntoa(msg[pos: pos + rdlen]))
        pos += rdlen
    return rcode, sorted(out)


def start_ours():
    ports = {k: free_port() for k in ("lb", "lb1a", "lb2a", "dns", "dnsa")}
    topo = os.path.join(WORK, "ours.toml")
    with open(topo, "w") as f:
        f.write(f"""[deployment]
name = "bench-dns"
[[dc]]
name = "dc1"
[[dc]]
name = "dc2"
[lb]
threads = 1
[[lb.node]]
name = "lb1"
dc = "dc1"
listen = "{EAST}:{ports['lb']}"
admin = "127.0.0.1:{ports['lb1a']}"
[[lb.node]]
name = "lb2"
dc = "dc2"
listen = "{WEST}:{ports['lb']}"
admin = "127.0.0.1:{ports['lb2a']}"
[dns]
zone = "{ZONE}"
threads = 1
log_level = "warn"
check_interval_ms = 1000
[[dns.region]]
name = "east"
subnets = ["198.18.1.0/24"]
dcs = ["dc1", "dc2"]
[[dns.region]]
name = "west"
subnets = ["198.18.2.0/24"]
dcs = ["dc2", "dc1"]
[[dns.node]]
name = "dns1"
dc = "dc1"
listen = "127.0.0.1:{ports['dns']}"
admin = "127.0.0.1:{ports['dnsa']}"
""")
    for n, a in (("lb1", "lb1a"), ("lb2", "lb2a")):
        spawn(n, [BIN, "serve", "lb", "--config", topo, "--node", n])
        wait_http(ports[a], "/readyz", n)
    p = spawn("ours", [BIN, "serve", "dns", "--config", topo, "--node", "dns1"])
    wait_http(ports["dnsa"], "/readyz", "ours")
    return p, ports["dns"]


def start_pdns():
    port = free_port()
    zone = os.path.join(WORK, "zone.db")
    with open(zone, "w") as f:
        f.write(f"""$ORIGIN {ZONE}.
$TTL 3600
@ IN SOA dns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 30
@ IN NS dns1.{ZONE}.
dns1 IN A 127.0.0.1
www 5 IN LUA A "view({{ {{{{'198.18.1.0/24'}}, {{'{EAST}'}}}}, {{{{'198.18.2.0/24'}}, {{'{WEST}'}}}}, {{{{'0.0.0.0/0'}}, {{'{EAST}'}}}} }})"
""")
    with open(os.path.join(WORK, "named.conf"), "w") as f:
        f.write(f'zone "{ZONE}" {{ type master; file "{zone}"; }};\n')
    with open(os.path.join(WORK, "pdns.conf"), "w") as f:
        f.write(f"""launch=bind
bind-config={WORK}/named.conf
enable-lua-records=yes
edns-subnet-processing=yes
local-address=127.0.0.1
local-port={port}
socket-dir={WORK}
daemon=no
guardian=no
receiver-threads=1
distributor-threads=1
reuseport=no
security-poll-suffix=
webserver=no
loglevel=3
""")
    p = spawn("pdns", ["/usr/sbin/pdns_server", f"--config-dir={WORK}"])
    deadline = time.time() + 20
    while time.time() < deadline:
        if p.poll() is not None:
            raise Failed(f"pdns_server exited: {tail('pdns')}")
        try:
            if answer_addresses(port, "dns1." + ZONE)[0] == 0:
                return p, port
        except OSError:
            pass
        time.sleep(0.2)
    raise Failed(f"pdns_server not answering: {tail('pdns')}")


def parse_dnsperf(out, what):
    def num(pattern):
        m = re.search(pattern, out)
        if not m:
            raise Failed(f"{what}: no '{pattern}' in dnsperf's output:\n{out[-1500:]}")
        return float(m.group(1).replace(",", ""))
    completed = num(r"Queries completed:\s+([\d,]+)")
    lost = num(r"Queries lost:\s+([\d,]+)")
    qps = num(r"Queries per second:\s+([\d.]+)")
    avg = num(r"Average Latency \(s\):\s+([\d.]+)")
    codes = re.search(r"Response codes:\s+(.*)", out)
    if lost:
        raise Failed(f"{what}: {lost:.0f} queries lost")
    if not completed:
        raise Failed(f"{what}: no query completed")
    if not codes or re.sub(r"NOERROR [\d,]+ \(100\.00%\)", "", codes.group(1)).strip():
        raise Failed(f"{what}: rcodes other than NOERROR: {codes.group(1) if codes else out}")
    return completed, qps, avg


def dnsperf(port, name, seconds, extra=()):
    path = os.path.join(WORK, "q-" + name)
    with open(path, "w") as f:
        f.write(f"{name} A\n")
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", path, "-l", str(seconds),
            "-c", str(CLIENTS), "-T", "1", "-q", str(OUTSTANDING), "-t", str(TIMEOUT), "-E", ECS, *extra]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    if r.returncode != 0:
        raise Failed(f"dnsperf exited {r.returncode}: {r.stderr[-500:]}")
    return r.stdout


def p99(port, name, rate):
    """p99 latency in ms at `rate` queries/s offered, from dnsperf -v's per-query lines."""
    out = dnsperf(port, name, P99_SECONDS, ("-v", "-Q", str(rate)))
    lat = sorted(float(m) for m in re.findall(r"^> \w+ .* ([\d.]+)$", out, re.M))
    parse_dnsperf(out, "p99 run")
    if not lat:
        raise Failed("no per-query latencies in dnsperf -v's output")
    return lat[int(len(lat) * 0.99) - 1 if len(lat) > 1 else 0] * 1000


def main():
    for tool in ("dnsperf", "/usr/sbin/pdns_server"):
        if not shutil.which(tool):
            raise Failed(f"{tool} is not installed (scripts/deps.sh all)")
    ours, ours_port = start_ours()
    pdns, pdns_port = start_pdns()
    static = "nope.example.com" if SELFTEST else "dns1." + ZONE
    contenders = {
        "ours-static": (ours, ours_port, static),
        "pdns-static": (pdns, pdns_port, static),
        "ours-geo": (ours, ours_port, "www." + ZONE),
        "pdns-geo": (pdns, pdns_port, "www." + ZONE),
    }
    # The same answers on both sides.
    for label, (_, port, name) in contenders.items():
        rcode, addrs = answer_addresses(port, name)
        want = [EAST] if name.startswith("www.") else ["127.0.0.1"]
        if rcode != 0 or addrs != want:
            if SELFTEST:
                break  # dnsperf below fails on the REFUSED answers
            raise Failed(f"{label}: answer rcode {rcode} {addrs}, want NOERROR {want}")
    print(f"bench/dns: ours `serve dns` threads=1 vs PowerDNS 4.7 receiver-threads=1 "
          f"distributor-threads=1; dnsperf -T 1 -c {CLIENTS} -q {OUTSTANDING}, ECS 198.18.1.0/24; "
          f"{ROUNDS} rounds x {DURATION} s, rotated", flush=True)
    names = list(contenders)
    # p99 at a fixed offered rate: P99_QPS, or half of what the contender sustained in its
    # warm-up when that is lower.
    rates = {}
    for label in names:
        _, port, name = contenders[label]
        _, qps, _ = parse_dnsperf(dnsperf(port, name, WARMUP), label + " warm-up")
        rates[label] = int(max(10, min(P99_QPS, qps / 2)))
    res = {k: {"qps": [], "cpu": [], "avg": [], "p99": []} for k in names}
    for rnd in range(ROUNDS):
        order = names[rnd % len(names):] + names[: rnd % len(names)]
        for label in order:
            proc, port, name = contenders[label]
            for n, p in PROCS:
                if p.poll() is not None:
                    raise Failed(f"{n} exited: {tail(n)}")
            c0 = cpu_seconds(proc.pid)
            out = dnsperf(port, name, DURATION)
            c1 = cpu_seconds(proc.pid)
            completed, qps, avg = parse_dnsperf(out, label)
            res[label]["qps"].append(qps)
            res[label]["cpu"].append((c1 - c0) / completed * 1e6)
            res[label]["avg"].append(avg * 1000)
            res[label]["p99"].append(p99(port, name, rates[label]))
            print(f"  round {rnd + 1} {label:12s} {qps:10,.0f} q/s  "
                  f"{(c1 - c0) / completed * 1e6:6.2f} cpu_us/q  avg {avg * 1000:.3f} ms  "
                  f"p99 {res[label]['p99'][-1]:.3f} ms at {rates[label]} q/s", flush=True)
    print(f"\n{'contender':12s} {'queries/s median [min-max] spread':40s} "
          f"{'cpu_us/query':28s} {'avg ms':8s} p99 ms median [min-max] (at q/s)")
    for label in names:
        r = res[label]
        print(f"{label:12s} {fmt(r['qps']):40s} {fmt(r['cpu'], 2):28s} "
              f"{statistics.median(r['avg']):<8.3f} {fmt(r['p99'], 2)} ({rates[label]})")
    print("\nratios (median of per-round ratios [min-max]):")
    print(f"  ours-geo / pdns-static  q/s {ratio(res['ours-geo']['qps'], res['pdns-static']['qps'])}"
          f"   (goal >= 1.1: geo answers at PowerDNS's static rate)")
    print(f"  ours-geo / pdns-geo     q/s {ratio(res['ours-geo']['qps'], res['pdns-geo']['qps'])}")
    print(f"  ours-static / pdns-static q/s "
          f"{ratio(res['ours-static']['qps'], res['pdns-static']['qps'])}")
    print(f"  cpu/query ours-geo / pdns-static "
          f"{ratio(res['ours-geo']['cpu'], res['pdns-static']['cpu'])}, "
          f"pdns-geo / ours-geo {ratio(res['pdns-geo']['cpu'], res['ours-geo']['cpu'], 0)}")
    if SELFTEST:
        sys.exit(3)


def cleanup():
    for _, p in PROCS:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for _, p in PROCS:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        print(f"bench: kept {WORK}", file=sys.stderr)


if __name__ == "__main__":
    run_main(main, Failed, SELFTEST, "the static query answered NOERROR", cleanup)
