"""`millions up` runs NATS JetStream: a three-server cluster (with etcd, nothing else) starts
together and shows in status with its stream totals; a stream kept on all three takes messages;
the meta leader killed is restarted and catches up; `down` then `up` keeps the stream (its data
lives under the run dir, as the other engines' does), and `down` leaves nothing running."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import Checks, binary, free_port, node, secret, topology, wait_for

tmp = tempfile.mkdtemp(prefix="millions-nats-")
os.chmod(tmp, 0o755)  # engines run as another user under a root runner
topo = os.path.join(tmp, "topology.toml")
servers = [node(f"nats{i}", admin=free_port(), peer_listen=free_port()) for i in (1, 2, 3)]
topology(topo, name="natstest", up=tmp, nats={"stream_replicas": 3, "node": servers})
c = Checks()


def run(*args, timeout=180):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def status():
    out = run("status", "--json", "--topology", topo, timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else None


def nats_rows():
    st = status()
    return [n for n in st["nodes"] if n["role"] == "nats"] if st else []


def jetstream(port, requests):
    """Sends (subject, payload dict) requests to a server over NATS' text protocol, each waiting
    for its reply on an inbox; the replies, parsed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()  # INFO
        # As the run's admin user (docs/credentials.md): NATS refuses a client without one.
        connect = {"verbose": False, "pedantic": False, "user": "admin",
                   "pass": secret(os.path.join(tmp, "run"), "nats_admin")}
        s.sendall(f"CONNECT {json.dumps(connect)}\r\nSUB _INBOX.t 1\r\n".encode())
        out = []
        for subject, body in requests:
            data = json.dumps(body).encode()
            s.sendall(f"PUB {subject} _INBOX.t {len(data)}\r\n".encode() + data + b"\r\n")
            while True:
                line = f.readline().decode().strip()
                if line == "PING":
                    s.sendall(b"PONG\r\n")
                elif line.startswith("-ERR"):
                    raise RuntimeError(line)
                elif line.startswith("MSG"):
                    n = int(line.split()[-1])
                    out.append(json.loads(f.read(n + 2)[:n]))
                    break
        return out


def port_of(address):
    return int(address.rsplit(":", 1)[1])


try:
    r = run("up", topo, "--detach")
    c.eq(r.returncode, 0, "up --detach: " + (r.stdout + r.stderr)[-500:])
    rows = nats_rows()
    c.eq(sorted(n["name"] for n in rows), ["nats1", "nats2", "nats3"], "every server in status")
    c.check(all(n["state"] == "running" and n["pid"] > 0 for n in rows), f"all running: {rows}")
    c.eq(len({n.get("meta_leader") for n in rows}), 1, f"one meta leader, the same for all: {rows}")
    c.eq([n.get("streams") for n in rows], [0, 0, 0], "no stream yet")
    conf = open(os.path.join(tmp, "run", "nats2", "nats.conf")).read()
    route = "nats://route:" + secret(os.path.join(tmp, "run"), "nats_route") + "@"
    c.check(f'"{route}{servers[0]["peer_listen"]}"' in conf and
            f'"{route}{servers[2]["peer_listen"]}"' in conf,
            "nats2 routes to the two others, as the routes' user")

    port = port_of(servers[1]["listen"])
    create = ("$JS.API.STREAM.CREATE.JOBS",
              {"name": "JOBS", "subjects": ["jobs.>"], "storage": "file", "num_replicas": 3})
    acks = jetstream(port, [create] + [("jobs.edit", {"job": i}) for i in range(3)])
    c.check("error" not in acks[0], f"stream created on three servers: {acks[0]}")
    c.eq([a.get("seq") for a in acks[1:]], [1, 2, 3], "three messages stored")
    c.check(wait_for(lambda: [n.get("messages") for n in nats_rows()] == [3, 3, 3], 10, 0.3),
            f"every server holds them: {nats_rows()}")

    leader = rows[0]["meta_leader"]
    old = next(n for n in rows if n["name"] == leader)
    r = run("chaos", "kill", leader, "--topology", topo, timeout=30)
    c.eq(r.returncode, 0, "chaos kill the meta leader: " + r.stderr)

    def back():
        n = next((n for n in nats_rows() if n["name"] == leader), None)
        return n if n and n["state"] == "running" and n["pid"] not in (0, old["pid"]) else None

    again = wait_for(back, 60, 0.3)
    c.check(again is not None, f"{leader} restarted and ready")
    c.check(wait_for(lambda: (back() or {}).get("messages") == 3, 20, 0.3),
            f"{leader} holds the stream again: {nats_rows()}")

    c.eq(run("down", "--topology", topo, timeout=120).returncode, 0, "down")
    c.check(status() is None, "runner gone after down")
    c.check(os.path.isdir(os.path.join(tmp, "run", "nats1", "jetstream")),
            "down keeps JetStream's data")
    r = run("up", topo, "--detach")
    c.eq(r.returncode, 0, "second up over the kept data: " + (r.stdout + r.stderr)[-300:])
    c.check(wait_for(lambda: [(n.get("streams"), n.get("messages")) for n in nats_rows()] ==
                     [(1, 3)] * 3, 20, 0.3), f"the stream and its messages kept: {nats_rows()}")
finally:
    c.eq(run("down", "--topology", topo, timeout=120).returncode, 0, "final down")

    def left():
        return subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split()

    wait_for(lambda: not left(), 5)
    c.eq(left(), [], "nothing left running")
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
