"""`millions serve dns` against real balancers: two DCs (dc1: lb1 and lb2, dc2: lb3), two regions
(east prefers dc1, west prefers dc2), two DNS servers. Raw UDP and TCP queries built here with
struct: SOA, NS and A at the apex, NXDOMAIN, REFUSED, FORMERR, NOTIMP, BADVERS, each region's
Client Subnet answered with its own DC (and the scope echoed), a big answer truncated over UDP
and whole over TCP, the TCP bounds, then dc1's balancers killed: east moves to dc2 within a
few health intervals, and back when they return. Balancers front no web node: the DNS servers
check the balancers' own /readyz. Last, `millions up` with two DNS servers: both run after the
balancer, answer, and `status --json` names the first and the zone."""
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, addr, binary, free_port, http_request, node, topology_text, wait_for  # noqa: E402

A, NS, SOA, AAAA, MX, OPT = 1, 2, 6, 28, 15, 41
ZONE = "millions.test"


def wire_name(name):
    out = b""
    for label in name.split(".") if name else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(name, qtype, qid=None, edns=None, ecs=None, opcode=0, version=0):
    """A query's bytes. edns: the UDP payload size (an OPT record); ecs: (a.b.c.d, prefix)."""
    qid = random.randrange(65536) if qid is None else qid
    additional = b""
    if edns is not None:
        opts = b""
        if ecs:
            ip, prefix = ecs
            raw = socket.inet_aton(ip)[: (prefix + 7) // 8]
            data = struct.pack(">HBB", 1, prefix, 0) + raw
            opts = struct.pack(">HH", 8, len(data)) + data
        additional = b"\0" + struct.pack(">HHBBHH", OPT, edns, 0, version, 0, len(opts)) + opts
    head = struct.pack(">HHHHHH", qid, (opcode << 11) | 0x0100, 1, 0, 0, 1 if additional else 0)
    return head + wire_name(name) + struct.pack(">HH", qtype, 1) + additional


def read_name(msg, pos):
    labels, jumped, end = [], False, None
    for _ in range(128):
        n = msg[pos]
        if n >= 0xC0:
            if not jumped:
                end = pos + 2
            jumped, pos = True, ((n & 0x3F) << 8) | msg[pos + 1]
            continue
        if n == 0:
            return ".".join(labels), (end if jumped else pos + 1)
        labels.append(msg[pos + 1: pos + 1 + n].decode().lower())
        pos += 1 + n
    raise ValueError("name loop")


def parse(msg):
    """The response as a dict: id, flags, rcode (with the extended bits), sections of
    (name, type, ttl, rdata) and the ECS option's (source, scope) when present."""
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", msg[:12])
    out = {"id": qid, "qr": bool(flags & 0x8000), "aa": bool(flags & 0x0400),
           "tc": bool(flags & 0x0200), "rcode": flags & 0xF, "answer": [], "authority": [],
           "additional": [], "ecs": None, "edns": False}
    pos = 12
    for _ in range(qd):
        _, pos = read_name(msg, pos)
        pos += 4
    for i in range(an + ns + ar):
        name, pos = read_name(msg, pos)
        rtype, rclass, ttl, rdlen = struct.unpack(">HHIH", msg[pos: pos + 10])
        pos += 10
        rdata = msg[pos: pos + rdlen]
        pos += rdlen
        if rtype == OPT:
            out["edns"] = True
            out["rcode"] |= (ttl >> 24) << 4
            p = 0
            while p < len(rdata):
                code, olen = struct.unpack(">HH", rdata[p: p + 4])
                if code == 8:
                    fam, src, scope = struct.unpack(">HBB", rdata[p + 4: p + 8])
                    out["ecs"] = (src, scope)
                p += 4 + olen
            continue
        section = "answer" if i < an else "authority" if i < an + ns else "additional"
        out[section].append((name, rtype, ttl, rdata))
    assert pos == len(msg), "trailing bytes"
    return out


def addresses(resp):
    return sorted(socket.inet_ntoa(r[3]) for r in resp["answer"] if r[1] == A)


def udp(port, msg, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(msg, ("127.0.0.1", port))
        data, _ = s.recvfrom(65535)
        return data


def tcp_exchange(sock, msg):
    sock.sendall(struct.pack(">H", len(msg)) + msg)
    head = b""
    while len(head) < 2:
        chunk = sock.recv(2 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = struct.unpack(">H", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def write_topology(path, dcs, **sections):
    """topology_text with these [[dc]] tables (it writes one, dc1)."""
    text = topology_text(name="dnstest", **sections)
    extra = "".join(f'\n[[dc]]\nname = "{d}"' for d in dcs[1:])
    text = text.replace('[[dc]]\nname = "dc1"', '[[dc]]\nname = "dc1"' + extra, 1)
    with open(path, "w") as f:
        f.write(text)
    return path


def ask(port, name, qtype, **kw):
    return parse(udp(port, query(name, qtype, **kw)))


c = Checks()
tmp = tempfile.mkdtemp(prefix="millions-dns-")
procs = {}
logs = {}


def start(name, role, topo):
    logs[name] = open(os.path.join(tmp, name + ".log"), "ab")
    procs[name] = subprocess.Popen([binary(), "serve", role, "--config", topo, "--node", name],
                                   stdout=subprocess.DEVNULL, stderr=logs[name])


def ready(admin_port, name, timeout=20):
    def ok():
        if procs[name].poll() is not None:
            raise RuntimeError(name + " exited: " + open(os.path.join(tmp, name + ".log")).read())
        try:
            return http_request("127.0.0.1", admin_port, "GET", "/readyz", timeout=2)[0] == 200
        except OSError:
            return False
    if not wait_for(ok, timeout):
        raise RuntimeError(name + " not ready")


def kill(name):
    procs[name].kill()
    procs[name].wait()


INTERVAL_MS = 200
lb_port = free_port()
lbs = {"lb1": ("dc1", "127.0.3.1"), "lb2": ("dc1", "127.0.3.2"), "lb3": ("dc2", "127.0.4.1")}
lb_admin = {n: free_port() for n in lbs}
dns_ports = {"dns1": free_port(), "dns2": free_port()}
dns_admin = {n: free_port() for n in dns_ports}
topo = write_topology(
    os.path.join(tmp, "topology.toml"), ["dc1", "dc2"],
    lb={"threads": 1, "node": [dict(name=n, dc=dc, listen=f"{ip}:{lb_port}",
                                     admin=addr(lb_admin[n])) for n, (dc, ip) in lbs.items()]},
    dns={"zone": ZONE, "ttl_s": 5, "check_interval_ms": INTERVAL_MS, "check_timeout_ms": 300,
         "fall": 2, "rise": 1, "tcp_idle_timeout_ms": 500, "tcp_max_queries": 3,
         "region": [{"name": "east", "subnets": ["198.18.1.0/24"], "dcs": ["dc1", "dc2"]},
                    {"name": "west", "subnets": ["198.18.2.0/24"], "dcs": ["dc2", "dc1"]}],
         "node": [node(n, dns_ports[n], admin=dns_admin[n]) for n in dns_ports]})

# A second zone file for the big answer: 40 balancers that do not run (no balancer passes its
# checks, so every one is answered: fail open), one DNS server.
big_port, big_admin = free_port(), free_port()
big = write_topology(
    os.path.join(tmp, "big.toml"), ["dc1"],
    lb={"node": [dict(name=f"b{i}", dc="dc1", listen=f"127.0.5.{i}:{free_port()}",
                      admin=addr(free_port())) for i in range(1, 41)]},
    dns={"zone": ZONE, "check_interval_ms": 1000, "check_timeout_ms": 100,
         "node": [node("dnsbig", big_port, admin=big_admin)]})

try:
    for n in lbs:
        start(n, "lb", topo)
    for n in lbs:
        ready(lb_admin[n], n)
    for n in dns_ports:
        start(n, "dns", topo)
    start("dnsbig", "dns", big)
    for n in dns_ports:
        ready(dns_admin[n], n)
    ready(big_admin, "dnsbig")
    port = dns_ports["dns1"]
    t_start = time.time()

    # The apex: SOA, NS with glue, A (the apex is a service name too).
    r = ask(port, ZONE, SOA)
    c.check(r["qr"] and r["aa"] and r["rcode"] == 0, f"SOA flags {r}")
    c.eq([x[1] for x in r["answer"]], [SOA], "apex SOA answer")
    r = ask(port, ZONE.upper(), NS)
    c.eq(sorted(x[1] for x in r["answer"]), [NS, NS], "apex NS: two name servers")
    c.eq(sorted(x[0] for x in r["additional"]), ["dns1." + ZONE, "dns2." + ZONE], "NS glue")
    r = ask(port, ZONE, A)
    c.eq(addresses(r), ["127.0.3.1", "127.0.3.2"], "apex A: dc1's balancers (no region: dc1)")
    c.check(all(x[2] == 5 for x in r["answer"]), f"apex A ttl 5: {r}")
    r = ask(port, "dns2." + ZONE, A)
    c.eq(addresses(r), ["127.0.0.1"], "a name server's own address")

    # Negative answers and errors.
    r = ask(port, "nope." + ZONE, A)
    c.eq(r["rcode"], 3, "NXDOMAIN")
    c.check(r["aa"] and [x[1] for x in r["authority"]] == [SOA], f"NXDOMAIN has the SOA: {r}")
    r = ask(port, "www." + ZONE, MX)
    c.check(r["rcode"] == 0 and not r["answer"] and r["authority"], f"NODATA for MX: {r}")
    r = ask(port, "www." + ZONE, AAAA)
    c.check(r["rcode"] == 0 and not r["answer"], f"AAAA NODATA (no IPv6 balancer): {r}")
    r = ask(port, "www.example.com", A)
    c.check(r["rcode"] == 5 and not r["aa"], f"REFUSED for another zone: {r}")
    raw = udp(port, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff\xff")
    r = parse(raw)
    c.check(r["id"] == 0x1234 and r["rcode"] == 1, f"FORMERR on garbage: {r}")
    r = ask(port, ZONE, A, opcode=2)
    c.eq(r["rcode"], 4, "NOTIMP for STATUS")
    r = ask(port, ZONE, A, edns=1232, version=1)
    c.eq(r["rcode"], 16, "BADVERS for EDNS version 1")
    # Garbage too short for a header, and a response: no answer at all.
    for junk in (b"\x00\x01", query(ZONE, A)[:2] + b"\x81\x00" + query(ZONE, A)[4:]):
        try:
            udp(port, junk, timeout=0.5)
            c.check(False, f"an answer to {junk!r}")
        except socket.timeout:
            c.check(True, "dropped")

    # Geo: each region's client subnet gets its own DC's balancers, with the scope echoed.
    east = ask(port, "www." + ZONE, A, edns=1232, ecs=("198.18.1.0", 24))
    c.eq(addresses(east), ["127.0.3.1", "127.0.3.2"], "east: dc1's balancers")
    c.eq(east["ecs"], (24, 24), "east: ECS echoed with scope 24")
    west = ask(port, "www." + ZONE, A, edns=1232, ecs=("198.18.2.0", 24))
    c.eq(addresses(west), ["127.0.4.1"], "west: dc2's balancer")
    c.eq(addresses(ask(dns_ports["dns2"], "www." + ZONE, A, edns=1232, ecs=("198.18.2.0", 24))),
         ["127.0.4.1"], "the second DNS server agrees")
    # No ECS: the source address (127.0.0.1, in no region): the DCs in the topology's order.
    c.eq(addresses(ask(port, "www." + ZONE, A)), ["127.0.3.1", "127.0.3.2"], "no region: dc1")

    # Truncation: 40 A records do not fit in 512 bytes: TC=1 over UDP, the whole over TCP.
    r = ask(big_port, "www." + ZONE, A)
    c.check(r["tc"] and not r["answer"], f"TC=1 without EDNS: {len(r['answer'])} records")
    r = ask(big_port, "www." + ZONE, A, edns=512)
    c.check(r["tc"] and r["edns"], "TC=1 at an EDNS size of 512, the OPT kept")
    r = ask(big_port, "www." + ZONE, A, edns=1232)
    c.check(not r["tc"] and len(r["answer"]) == 40, "40 records fit in 1232 bytes")
    with socket.create_connection(("127.0.0.1", big_port), timeout=3) as s:
        got = tcp_exchange(s, query("www." + ZONE, A))
        r = parse(got)
        c.check(not r["tc"] and len(r["answer"]) == 40,
                f"TCP: all 40 (fail open: none of them runs): {len(r['answer'])}")

    # TCP bounds on dns1: three queries per connection, then closed; idle connections closed.
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        answers = [tcp_exchange(s, query(ZONE, SOA)) for _ in range(3)]
        c.check(all(a and parse(a)["rcode"] == 0 for a in answers), "three queries on one TCP")
        try:
            c.check(tcp_exchange(s, query(ZONE, SOA)) is None, "the fourth: connection closed")
        except OSError:
            c.check(True, "the fourth: connection reset")
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        t0 = time.time()
        c.check(s.recv(1) == b"", "an idle TCP connection is closed")
        c.check(time.time() - t0 < 2.5, f"within the idle timeout: {time.time() - t0:.2f} s")

    # dc1's balancers die: east moves to dc2 within a few health intervals.
    kill("lb1")
    kill("lb2")
    t0 = time.time()
    moved = wait_for(lambda: addresses(ask(port, "www." + ZONE, A, edns=1232,
                                           ecs=("198.18.1.0", 24))) == ["127.0.4.1"], 5, 0.05)
    took = time.time() - t0
    c.check(moved, "east moved to dc2 after dc1's balancers died")
    c.check(took < 5 * INTERVAL_MS / 1000 + 0.5, f"within a few intervals: {took:.2f} s")
    print(f"east moved to dc2 in {took:.2f} s")
    status = json.loads(http_request("127.0.0.1", dns_admin["dns1"], "GET", "/status")[2])
    c.eq({b["name"]: b["up"] for b in status["balancers"]},
         {"lb1": False, "lb2": False, "lb3": True}, "/status: the balancers' health")
    c.eq([r_["dc"] for r_ in status["regions"]], ["dc2", "dc2"], "/status: both regions on dc2")
    c.check(wait_for(lambda: addresses(ask(dns_ports["dns2"], "www." + ZONE, A, edns=1232,
                                           ecs=("198.18.1.0", 24))) == ["127.0.4.1"], 5, 0.05),
            "the second DNS server too")
    # ... and back when they return.
    start("lb1", "lb", topo)
    start("lb2", "lb", topo)
    ready(lb_admin["lb1"], "lb1")
    ready(lb_admin["lb2"], "lb2")
    back = wait_for(lambda: addresses(ask(port, "www." + ZONE, A, edns=1232,
                                          ecs=("198.18.1.0", 24))) == ["127.0.3.1", "127.0.3.2"],
                    5, 0.05)
    c.check(back, "east back on dc1 once its balancers run again")

    # Metrics: queries by type, rcode and transport; truncation; balancer health.
    metrics = http_request("127.0.0.1", dns_admin["dns1"], "GET", "/metrics")[2].decode()
    for line in ('millions_dns_queries_total{qtype="A",rcode="NXDOMAIN",transport="udp"} 1',
                 'millions_dns_queries_total{qtype="A",rcode="REFUSED",transport="udp"} 1',
                 'millions_dns_queries_total{qtype="SOA",rcode="NOERROR",transport="tcp"} 3',
                 'millions_dns_balancer_up{balancer="lb1",dc="dc1"} 1',
                 'millions_dns_region_dc{region="east",dc="dc1"} 1'):
        c.check(line in metrics, "metric " + line)
    c.check("millions_dns_answer_duration_seconds_bucket" in metrics, "duration histogram")
    big_metrics = http_request("127.0.0.1", big_admin, "GET", "/metrics")[2].decode()
    c.check('millions_dns_truncated_total{transport="udp"} 2' in big_metrics, "truncated counted")
    c.check("millions_dns_fail_open 1" in big_metrics, "fail open shown")

    # SIGTERM: the server drains and exits 0.
    procs["dns2"].terminate()
    c.eq(procs["dns2"].wait(timeout=10), 0, "dns2 exits 0 on SIGTERM")
    print(f"checks took {time.time() - t_start:.1f} s")
finally:
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()

# `millions up` runs the DNS servers after the balancers, and `status --json` names the first
# one and the zone among its endpoints (CONTRACT.md section 2).
up_dir = os.path.join(tmp, "up")
os.makedirs(up_dir)
os.chmod(tmp, 0o755)  # engines (etcd) run as another user when we are root
os.chmod(up_dir, 0o755)
up_topo = os.path.join(up_dir, "topology.toml")
up_dns = free_port()
with open(up_topo, "w") as f:
    f.write(topology_text(
        name="dnsup", up=up_dir,
        lb={"threads": 1, "node": [dict(name="lb1", listen=f"127.0.3.1:{free_port()}",
                                        admin=addr(free_port()))]},
        dns={"zone": "up.test", "check_interval_ms": 200,
             "node": [node("dns1", up_dns, admin=free_port()), node("dns2", admin=free_port())]}))
t0 = time.time()
p = subprocess.run([binary(), "up", up_topo, "--detach"], capture_output=True, timeout=120,
                   cwd=up_dir)
try:
    c.eq(p.returncode, 0, "up --detach: " + (p.stdout + p.stderr).decode()[-800:])
    st = subprocess.run([binary(), "status", "--json", "--topology", up_topo],
                        capture_output=True, timeout=30)
    st = json.loads(st.stdout) if st.returncode == 0 else {"nodes": [], "endpoints": {}}
    roles = {n["name"]: (n["role"], n["state"]) for n in st["nodes"]}
    c.eq(roles.get("dns1"), ("dns", "running"), "up: dns1 running")
    c.eq(roles.get("dns2"), ("dns", "running"), "up: dns2 running")
    c.eq(st["endpoints"].get("dns"), addr(up_dns), "status endpoints: dns")
    c.eq(st["endpoints"].get("zone"), "up.test", "status endpoints: zone")
    runner_log = open(os.path.join(up_dir, "run", "runner.log")).read()
    c.check("(zone up.test: dig @127.0.0.1" in runner_log, "up's banner names the DNS server")
    c.check(0 <= runner_log.find("starting lb") < runner_log.find("starting dns"),
            "the DNS servers start after the balancers")
    r = ask(up_dns, "www.up.test", A)
    c.eq(addresses(r), ["127.0.3.1"], "the DNS server under up answers with the balancer")
    print(f"up with dns took {time.time() - t0:.1f} s")
finally:
    d = subprocess.run([binary(), "down", "--topology", up_topo], capture_output=True,
                       timeout=120)
    c.eq(d.returncode, 0, "down")
if not c.failed:
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
