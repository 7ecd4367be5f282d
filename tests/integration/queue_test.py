"""Stage 9 without the runner: a web node publishes edit jobs to a real nats-server (JetStream,
file storage) and `millions serve worker` processes run them, on one real PostgreSQL.
What it shows: libvips is mapped in the workers, never in the web node (uploads included); a
worker killed mid-job loses nothing and makes one result; 1000 jobs accepted while no worker runs
all finish once workers start; nats-server killed and restarted under load
loses no accepted job; a job that kills its worker every time ends `failed` after its attempts,
with a dead letter; a job whose publish was lost is found and run by the reconciler."""
import os
import signal
import subprocess
import tempfile
import time

from harness import (Checks, NatsServer, PgServer, WebNode, Worker, WorkerNode, bearer,
                     free_port, node, png, wait_job, web_topology, worker_faults)

ID_EPOCH_MS = 1_704_067_200_000
BACKLOG = 1000  # jobs accepted while no worker runs

c = Checks()
pg = PgServer().start()
nats = NatsServer().start()
web_port, w1_port, w2_port = free_port(), free_port(), free_port()
topo = web_topology(
    os.path.join(tempfile.mkdtemp(), "topology.toml"), pg.port, [web_port],
    extra={"queue": {"ack_wait_ms": 1500, "reconcile_ms": 500, "reconcile_age_ms": 2000},
           "cache": {"ttl_ms": 1000},
           "nats": [node("nats1", nats.port, admin=nats.monitor)],
           "worker": [node("worker1", w1_port), node("worker2", w2_port)]})
web = WebNode(topo, "web1", web_port)
w1, w2 = WorkerNode(topo, "worker1", w1_port), WorkerNode(topo, "worker2", w2_port)


def edit(token, photo_id, ops):
    return web.json("POST", f"/api/photos/{photo_id}/edits", {"ops": ops}, bearer(token))


def wait_status(token, job_id, statuses, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s, _, job = web.json("GET", f"/api/jobs/{job_id}", headers=bearer(token))
        if s == 200 and job["status"] in statuses:
            return job
        time.sleep(0.02)
    return None


def versions(photo_id, want=None):
    """The photo's version count; with `want`, waits up to 5 s for it: without cache nodes a
    worker cannot reach the web node's L1, which may show the photo stale for l1_ttl_ms."""
    deadline = time.time() + (5 if want is not None else 0)
    while True:
        s, _, p = web.json("GET", f"/api/photos/{photo_id}")
        n = len(p["versions"]) if s == 200 else -1
        if want is None or n == want or time.time() >= deadline:
            return n
        time.sleep(0.1)


def psql(sql):
    return subprocess.run(
        ["/usr/lib/postgresql/15/bin/psql",
         f"host=127.0.0.1 port={pg.port} user=millions dbname=millions", "-qAt", "-c", sql],
        check=True, capture_output=True, text=True).stdout.strip()


# Slow enough to be caught running (about 4 s on 2 cores): 4 MP blurred, then a thumbnail.
SLOW = [{"op": "resize", "width": 2000, "height": 2000}, {"op": "blur", "sigma": 5},
        {"op": "resize", "width": 64, "height": 64}]
QUICK = [{"op": "rotate", "degrees": 90}]


def maps(proc):
    with open(f"/proc/{proc.proc.pid}/maps") as f:
        return f.read()


try:
    web.start()
    w1.start()
    # 0. libvips only where images are edited: the worker loads it at start; the web node, whose
    # edits run on the workers, never does (nor any library only libvips pulls in), not even to
    # probe an upload (the header is read without it: media/sniff.h).
    c.check("millions-media-vips.so" in maps(w1) and "libvips" in maps(w1),
            "the worker has libvips mapped")
    c.check("libvips" not in maps(web) and "millions-media-vips" not in maps(web),
            "an idle web node with workers has no libvips mapped")
    s, _, _ = web.json("POST", "/api/users", {"handle": "quinn", "password": "password123"})
    s, _, sess = web.json("POST", "/api/sessions", {"handle": "quinn", "password": "password123"})
    token = sess["token"]
    s, _, photo = web.json("POST", "/api/photos?caption=q", png(80, 60),
                           {**bearer(token), "Content-Type": "image/png"})
    c.eq(s, 201, "upload")
    pid = photo["id"]

    # 1. A job runs on a worker node, not on the web node.
    s, _, job = edit(token, pid, QUICK)
    c.eq(s, 202, "edit accepted")
    done = wait_job(web, token, job["id"])
    c.eq(done and done["status"], "done", "a worker node ran the job")
    c.check(b'"job finished"' in open(w1.log_path, "rb").read(), "worker1 logged it")
    c.check(b'"job finished"' not in open(web.log_path, "rb").read(), "the web node ran none")
    c.check("libvips" not in maps(web) and "millions-media-vips" not in maps(web),
            "the web node probed the upload and queued the edit without loading libvips")

    # 1b. The browser's long poll: one request that answers when the job finishes (announced
    # by the worker over NATS), well before its 20 s bound; a bad wait is a 400.
    s, _, job = edit(token, pid, SLOW)
    t0 = time.time()
    s, _, polled = web.json("GET", f"/api/jobs/{job['id']}?wait_ms=20000", headers=bearer(token))
    took = time.time() - t0
    c.eq((s, polled and polled["status"]), (200, "done"), "one long poll answered with the job done")
    c.check(took < 15, f"at the job's end, not at the poll's bound ({took:.1f} s)")
    c.eq(web.json("GET", f"/api/jobs/{job['id']}?wait_ms=99999", headers=bearer(token))[0], 400,
         "a wait past 25 s is refused")

    # 2. kill -9 a worker mid-job: the job finishes on another, with one result.
    before = versions(pid)
    s, _, job = edit(token, pid, SLOW)
    running = wait_status(token, job["id"], ("running", "done"))
    c.eq(running and running["status"], "running", "caught the slow job running on worker1")
    w1.kill()
    w2.start()
    done = wait_job(web, token, job["id"], timeout=60)
    c.eq(done and done["status"], "done", "the killed worker's job finished on worker2")
    c.eq(versions(pid, before + 1), before + 1, "one result for a job delivered twice")
    w1.start()

    # 2b. A worker paused (SIGSTOP) mid-job past its ack deadline: the job goes to the other
    # worker and finishes; the paused one, resumed, finishes it too, and still one version.
    w2.stop()
    before = versions(pid)
    s, _, job = edit(token, pid, SLOW)
    running = wait_status(token, job["id"], ("running", "done"))
    c.eq(running and running["status"], "running", "caught the slow job running on worker1")
    w1.proc.send_signal(signal.SIGSTOP)
    w2.start()
    done = wait_job(web, token, job["id"], timeout=60)
    c.eq(done and done["status"], "done", "the paused worker's job finished on worker2")
    w1.proc.send_signal(signal.SIGCONT)
    time.sleep(6)  # the resumed worker ends its copy of the job
    c.eq(versions(pid, before + 1), before + 1, "one version after the paused worker resumed")
    c.check(w1.proc.poll() is None, "the resumed worker runs on")

    # 3. No worker runs: 1000 jobs are accepted (durable) and all finish once workers start.
    w1.stop()
    w2.stop()
    before = versions(pid)
    waiting = nats.jsz().get("MILLIONS_JOBS", 0)
    ids = []
    for i in range(BACKLOG):
        s, _, job = edit(token, pid, QUICK)
        if s == 202:
            ids.append(job["id"])
    c.eq(len(ids), BACKLOG, f"{BACKLOG} jobs accepted with no worker running")
    c.eq(nats.jsz().get("MILLIONS_JOBS"), waiting + BACKLOG, f"all {BACKLOG} wait in the stream")
    w1.start()
    w2.start()
    t_start = time.time()
    deadline = t_start + 240
    left = list(ids)
    while left and time.time() < deadline:
        left = [j for j in left if (wait_status(token, j, ("done", "failed"), 0.5) or {})
                .get("status") != "done"]
    c.eq(len(left), 0, f"every accepted job done once workers started ({len(left)} left, "
         f"{time.time() - t_start:.1f} s)")
    c.eq(versions(pid, before + BACKLOG), before + BACKLOG, "one version per job")

    # 4. nats-server killed and restarted under load: no accepted job is lost.
    accepted, refused = [], []

    def post(n):
        for _ in range(n):
            s, _, job = edit(token, pid, QUICK)
            (accepted if s == 202 else refused).append(job["id"] if s == 202 else s)

    threads = [Worker(post, 60, name=f"poster{i}") for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    nats.restart()
    c.eq(worker_faults(threads, 120), [], "the posters ran to the end")
    c.check(all(s == 503 for s in refused), f"a job not accepted was refused with 503: {refused}")
    deadline = time.time() + 90
    left = list(accepted)
    while left and time.time() < deadline:
        left = [j for j in left if (wait_status(token, j, ("done", "failed"), 0.5) or {})
                .get("status") != "done"]
    c.eq(len(left), 0, f"all {len(accepted)} accepted jobs done after the restart "
         f"({len(refused)} refused, {len(left)} left)")

    # 5. A poison job: it stops its worker every time. After max_attempts (3) it ends failed,
    # with a readable error and a dead letter, and is not retried again.
    w2.stop()
    s, _, job = edit(token, pid, SLOW)
    for attempt in (1, 2, 3):
        # The row counts every attempt that began; each delivery waits for the ack deadline
        # (with back-off) of the one that died.
        deadline = time.time() + 60
        while time.time() < deadline and \
                psql(f"SELECT attempts FROM jobs WHERE id = {job['id']}") != str(attempt):
            time.sleep(0.05)
        c.eq(psql(f"SELECT attempts FROM jobs WHERE id = {job['id']}"), str(attempt),
             f"poison job began attempt {attempt}")
        w1.kill()
        w1.start()
    failed = wait_status(token, job["id"], ("failed", "done"), 60)
    c.eq(failed and failed["status"], "failed", "the poison job ended failed")
    c.check(failed and "gave up after 3 attempts" in failed.get("error", ""),
            f"with a readable error: {failed}")
    c.eq(nats.jsz().get("MILLIONS_DEAD"), 1, "and one dead letter")

    # 6. A publish lost between the row and the queue (a web node that died in between): the
    # reconciler finds the queued row the stream does not hold and runs it.
    before = versions(pid)
    ms = int(time.time() * 1000) - 5000
    lost_id = ((ms - ID_EPOCH_MS) << 23) | (77 << 10) | 1
    psql(f"INSERT INTO jobs(id, photo_id, owner_id, status, ops, created_ms) "
         f"SELECT {lost_id}, photo_id, owner_id, 'queued', ops, {ms} FROM jobs WHERE id = {ids[0]}")
    done = wait_job(web, token, str(lost_id), timeout=30)
    c.eq(done and done["status"], "done", "the reconciler published the lost job and it ran")
    c.eq(versions(pid, before + 1), before + 1, "once")
    s, _, m = w1.request("GET", "/metrics")
    c.check(b"millions_jobs_republished_total 1" in m, "the worker counted it as republished")
finally:
    for n in (web, w1, w2):
        rc = n.stop()
        c.check(rc in (0, None), f"{n.name} drained and exited 0 ({rc})")
    nats.kill()
    pg.stop()
c.finish()
