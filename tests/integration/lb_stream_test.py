"""Large bodies stream through the balancer in both directions without being held whole.
A Python backend hashes uploads as they arrive and streams downloads of any size; through
`millions serve lb` we send uploads with Content-Length and chunked, fetch large downloads with
Content-Length and chunked, and check every byte (SHA-256) and that the balancer's peak memory
(VmHWM) grew by far less than the bodies it carried. A body over the limit gets 413."""
import hashlib
import http.client
import http.server
import json
import os
import socket
import subprocess
import tempfile
import time

from harness import (Checks, RecordingHTTPServer, binary, free_port, http_request, node, topology,
                     wait_for)

c = Checks()
tmp = tempfile.mkdtemp(prefix="millions-lbstream-")
MiB = 1 << 20


def pattern(n):
    """n deterministic bytes, produced in 64 KiB pieces."""
    block = bytes(range(256)) * 256
    while n > 0:
        piece = block[: min(n, len(block))]
        n -= len(piece)
        yield piece


def digest(n):
    h = hashlib.sha256()
    for piece in pattern(n):
        h.update(piece)
    return h.hexdigest()


class Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/readyz":
            body = b'{"ready":true}'
            self.send_response(200)
            self.send_header("X-Request-Id", self.headers.get("X-Request-Id", ""))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        # /download/<bytes>/<cl|chunked>
        _, _, n, mode = self.path.split("/")
        n = int(n)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode == "cl":
            self.send_header("Content-Length", str(n))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pattern(n):
            if mode == "cl":
                self.wfile.write(piece)
            else:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        if mode != "cl":
            self.wfile.write(b"0\r\n\r\n")

    def do_POST(self):
        h = hashlib.sha256()
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                if not line:
                    return  # the balancer cut an oversized upload short: nothing to answer
                size = int(line.strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data = self.rfile.read(size)
                h.update(data)
                total += len(data)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left > 0:
                data = self.rfile.read(min(left, 1 << 16))
                if not data:
                    break
                h.update(data)
                total += len(data)
                left -= len(data)
        body = json.dumps({"sha256": h.hexdigest(), "bytes": total}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


backend = RecordingHTTPServer(Backend).serve()

lb_port, lb_admin = free_port(), free_port()
topo = os.path.join(tmp, "lb.toml")
topology(topo, lb={"threads": 1, "policy": "round_robin", "check_interval_ms": 500,
                   "node": [node("lb1", lb_port, admin=lb_admin)]},
         http={"max_body_bytes": 20 * MiB, "idle_timeout_ms": 1500},
         web=[node("b1", backend.server_address[1])])
log = open(os.path.join(tmp, "lb.log"), "w")
lb = subprocess.Popen([binary(), "serve", "lb", "--config", topo, "--node", "lb1"], stderr=log)


def hwm_kib():
    with open(f"/proc/{lb.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def upload(n, chunked):
    conn = http.client.HTTPConnection("127.0.0.1", lb_port, timeout=60)
    headers = {"Content-Type": "application/octet-stream"}
    if chunked:
        conn.request("POST", "/upload", body=pattern(n), headers=headers, encode_chunked=True)
    else:
        headers["Content-Length"] = str(n)
        conn.request("POST", "/upload", body=pattern(n), headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def download(n, mode):
    conn = http.client.HTTPConnection("127.0.0.1", lb_port, timeout=60)
    conn.request("GET", f"/download/{n}/{mode}")
    r = conn.getresponse()
    h = hashlib.sha256()
    total = 0
    while True:
        piece = r.read(1 << 16)
        if not piece:
            break
        h.update(piece)
        total += len(piece)
    framing = "chunked" if r.getheader("Transfer-Encoding") else r.getheader("Content-Length")
    # The same connection carries the next request: the stream ended cleanly.
    conn.request("GET", "/readyz")
    again = conn.getresponse()
    again.read()
    conn.close()
    return r.status, h.hexdigest(), total, framing, again.status


def raw_upload(n, chunked):
    """Sends as much of an oversized body as the balancer takes; returns what it answered."""
    s = socket.create_connection(("127.0.0.1", lb_port), timeout=20)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {n}"
    s.sendall(f"POST /upload HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode())
    try:
        for piece in pattern(n):
            s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            s.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # cut off after the answer: expected
    data = b""
    try:
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
    except OSError:
        pass
    s.close()
    return data


def ready():
    try:
        return http_request("127.0.0.1", lb_port, "GET", "/readyz", timeout=2)[0] == 200
    except OSError:
        return False


try:
    c.check(wait_for(ready, 20, 0.2), "the balancer is ready")
    base = hwm_kib()

    n = 16 * MiB
    s = socket.create_connection(("127.0.0.1", lb_port), timeout=10)
    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-me-1\r\n"
              b"Connection: close\r\n\r\n")
    answer = b""
    while piece := s.recv(65536):
        answer += piece
    s.close()
    ids = [line for line in answer.split(b"\r\n") if line.lower().startswith(b"x-request-id:")]
    c.check(ids == [b"X-Request-Id: trace-me-1"],
            f"one X-Request-Id in a proxied response, the client's: {ids}")

    status, data = upload(n, chunked=False)
    got = json.loads(data) if status == 200 else {}
    c.check(status == 200 and got.get("sha256") == digest(n) and got.get("bytes") == n, "16 MiB upload with Content-Length arrives whole" + ": " + str(f"{status} {data[:200]!r}"))
    n = 12 * MiB + 12345
    status, data = upload(n, chunked=True)
    got = json.loads(data) if status == 200 else {}
    c.check(status == 200 and got.get("sha256") == digest(n), "chunked upload arrives whole" + ": " + str(f"{status} {data[:200]!r}"))

    n = 64 * MiB
    status, sha, total, framing, again = download(n, "cl")
    c.check(status == 200 and total == n and sha == digest(n) and framing == str(n), "64 MiB download with Content-Length arrives whole" + ": " + str(f"{status} {total} {framing}"))
    c.check(again == 200, "the connection is reused after a streamed response" + ": " + str(again))
    n = 32 * MiB + 7
    status, sha, total, framing, again = download(n, "chunked")
    c.check(status == 200 and total == n and sha == digest(n) and framing == "chunked", "chunked download of unknown length arrives whole (re-chunked)" + ": " + str(f"{status} {total} {framing}"))

    # Idle keep-alive connections are closed after idle_timeout_ms (1.5 s here), busy ones not.
    # The busy one sends a request every 0.5 s, in between waiting (0.5 s at most) for the
    # idle one to be closed; it goes on until 3 s have passed, twice the idle timeout.
    idle = socket.create_connection(("127.0.0.1", lb_port), timeout=10)
    busy = socket.create_connection(("127.0.0.1", lb_port), timeout=10)
    t0 = time.time()
    closed_after = None
    busy_ok = []
    while time.time() - t0 < 10 and (closed_after is None or time.time() - t0 < 3):
        busy.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = busy.recv(65536)
        busy_ok.append(got.startswith(b"HTTP/1.1 200"))
        if closed_after is None:
            idle.settimeout(0.5)
            try:
                if idle.recv(1) == b"":
                    closed_after = time.time() - t0
            except socket.timeout:
                pass
            except OSError:
                closed_after = time.time() - t0
        else:
            time.sleep(0.5)  # the pace of a connection in use, not a wait for a condition
    c.check(busy_ok and all(busy_ok),
            f"a connection in use is kept: {len(busy_ok)} requests over {time.time() - t0:.1f} s, "
            f"last answer {got[:40]!r}")
    c.check(closed_after is not None and 1.2 <= closed_after <= 4.5,
            f"an idle connection is closed after about idle_timeout_ms: {closed_after}")
    idle.close()
    busy.close()

    c.eq(backend.faults(), [], "the backend's handlers raised nothing while streaming")
    grown_mib = (hwm_kib() - base) / 1024
    c.check(grown_mib < 8, "the balancer's peak memory grew far less than the bodies it carried" + ": " + str(f"grew {grown_mib:.1f} MiB carrying 124 MiB"))
    print(f"lb peak RSS growth while streaming 124 MiB: {grown_mib:.1f} MiB")

    answer = raw_upload(21 * MiB, chunked=False)
    c.check(answer.startswith(b"HTTP/1.1 413") and b"payload_too_large" in answer,
            f"a Content-Length over max_body_bytes gets 413: {answer[:200]!r}")
    answer = raw_upload(21 * MiB, chunked=True)
    c.check(answer.startswith(b"HTTP/1.1 413") and b"payload_too_large" in answer,
            f"a chunked body that grows past max_body_bytes gets 413: {answer[:200]!r}")
    c.check(http_request("127.0.0.1", lb_port, "GET", "/readyz")[0] == 200, "the balancer still serves after that")
finally:
    lb.terminate()
    try:
        lb.wait(timeout=15)
    except subprocess.TimeoutExpired:
        lb.kill()
    backend.shutdown()
    log.close()
    if c.failed:
        print(open(os.path.join(tmp, "lb.log")).read()[-3000:])

c.finish()
