"""Feed fan-out without the runner: a web node publishes each post as a fan-out job to a real
nats-server, a `millions serve worker` writes the photo id into every follower's home timeline
in a real timeline store (redis-server with its AOF, and a replica), and the feed reads it.
What it shows: a post reaches every follower's feed through their timelines (not the database);
a celebrity's post (followers above the bound) is not fanned out but is in every follower's
feed, merged at read time; a new follow brings the followee's older photos, an unfollow takes
them away; the timeline feed gives the same bytes as the database feed of a node without a
timeline store; with the store's primary killed -9 the feed still answers, from the database,
posts made meanwhile included, and once it is back the retried fan-out jobs write them into the
timelines, which the feed reads again."""
import os
import re
import tempfile
import time

from harness import (Checks, NatsServer, PgServer, RedisServer, WebNode, WorkerNode, bearer,
                     free_port, node, png, signup_login, wait_for, web_topology)

CELEBRITY_FOLLOWERS = 3

c = Checks()
pg = PgServer().start()
nats = NatsServer().start()
primary = RedisServer("timeline1", aof=True).start()
replica = RedisServer("timeline2", aof=True, replica_of=primary).start()
tmp = tempfile.mkdtemp(prefix="millions-feed-")
web_port, plain_port, w_port = free_port(), free_port(), free_port()
queue = {"ack_wait_ms": 1500, "reconcile_ms": 500, "reconcile_age_ms": 2000}
common = {"queue": queue, "cache": {"ttl_ms": 1000},
          "nats": [node("nats1", nats.port, admin=nats.monitor)],
          "worker": [node("worker1", w_port)]}
topo = web_topology(os.path.join(tmp, "topology.toml"), pg.port, [web_port], extra={
    **common, "timeline": {"cap": 50, "celebrity_followers": CELEBRITY_FOLLOWERS,
                           "fanout_threads": 1, "timeout_ms": 200,
                           "node": [node("timeline1", primary.port),
                                    node("timeline2", replica.port)]}})
# The same service without a timeline store: its feed is the database's, the reference bytes.
plain_topo = web_topology(os.path.join(tmp, "plain.toml"), pg.port, [plain_port], extra=common)
web = WebNode(topo, "web1", web_port)
plain = WebNode(plain_topo, "web1", plain_port)
worker = WorkerNode(topo, "worker1", w_port)


def metric(srv, name, labels=""):
    _, _, data = srv.request("GET", "/metrics")
    total = 0.0
    for line in data.decode().splitlines():
        m = re.match(r"^" + re.escape(name) + r"(\{[^}]*\})? (\S+)$", line)
        if m and labels in (m.group(1) or ""):
            total += float(m.group(2))
    return total


def post(token, seed):
    s, _, p = web.json("POST", "/api/photos", png(48, 32, seed=seed),
                       {**bearer(token), "Content-Type": "image/png"})
    assert s == 201, (s, p)
    return p["id"]


def feed_ids(srv, token):
    s, _, f = srv.json("GET", "/api/feed?limit=50", headers=bearer(token))
    return [i["id"] for i in f["items"]] if s == 200 else ("status", s)


def timeline(user_id):
    """The photo ids in the user's timeline on the primary, newest first (the built mark
    left out)."""
    out = primary.cli("ZREVRANGEBYLEX", f"tl:{user_id}", "+", "[0")
    return [str(int(m.split(":")[0])) for m in out.split() if m[:1].isdigit()]


def follow(token, user, method="POST"):
    s = web.json(method, f"/api/users/{user['id']}/follow", headers=bearer(token))[0]
    assert s == 204, s


try:
    web.start()
    plain.start()
    worker.start()
    users = {}
    for h in ("alice", "celeb", "bob", "carol", "dave", "erin", "frank"):
        u, sess, _ = signup_login(web, h)
        users[h] = (u, sess["token"])
    (alice, ta), (celeb, tc) = users["alice"], users["celeb"]
    tok = {h: users[h][1] for h in users}
    for h in ("bob", "carol"):
        follow(tok[h], alice)
    for h in ("bob", "carol", "dave", "erin"):
        follow(tok[h], celeb)
    for h in ("bob", "carol", "dave"):
        feed_ids(web, tok[h])  # builds each timeline before the posts

    # --- a post reaches every follower's feed, through their timelines
    p1 = post(ta, 1)
    c.check(wait_for(lambda: all(p1 in timeline(users[h][0]["id"]) for h in ("bob", "carol")),
                     15), "alice's post is written into bob's and carol's timelines")
    c.check(p1 not in timeline(users["dave"][0]["id"]), "not into dave's (not a follower)")
    c.check(wait_for(lambda: all(feed_ids(web, tok[h])[:1] == [p1] for h in ("bob", "carol")),
                     5), "it heads bob's and carol's feeds")
    c.check(metric(worker, "millions_fanout_writes_total") >= 2,
            "the worker counts the timeline writes")
    c.check(metric(web, "millions_timeline_reads_total", 'result="hit"') >= 2,
            "the feed was read from the timelines")

    # --- a celebrity's post is not fanned out; every follower's feed merges it in
    c1 = post(tc, 2)
    followers = [users[h][0]["id"] for h in ("bob", "carol", "dave", "erin")]
    c.check(wait_for(lambda: metric(worker, "millions_fanout_celebrity_posts_total") >= 1, 15),
            "the fan-out job sees more followers than the bound")
    c.check(celeb["id"] in primary.cli("SMEMBERS", "celebrities").split(),
            "the store lists celeb as a celebrity")
    c.check(all(c1 not in timeline(u) for u in followers), "no timeline holds celeb's post")
    c.check(wait_for(lambda: all(c1 in feed_ids(web, users[h][1])
                                 for h in ("bob", "carol", "dave", "erin")), 10),
            "celeb's post is in all four followers' feeds (merged at read time)")
    c.check(c1 not in feed_ids(web, tok["frank"]), "not in frank's (not a follower)")

    # --- a follow brings the followee's older photos; an unfollow takes them away
    follow(tok["dave"], alice)
    c.check(p1 in feed_ids(web, tok["dave"]), "dave follows alice: her older post is in his feed")
    follow(tok["carol"], alice, "DELETE")
    c.check(p1 not in feed_ids(web, tok["carol"]), "carol unfollows alice: her post is gone")
    c.check(wait_for(lambda: p1 not in timeline(users["carol"][0]["id"]), 10),
            "and out of carol's timeline (rebuilt)")

    # --- the same bytes as the database's feed
    def same_bytes():
        for h in ("bob", "carol", "dave", "erin", "frank"):
            a = web.request("GET", "/api/feed?limit=50", headers=bearer(tok[h]))
            b = plain.request("GET", "/api/feed?limit=50", headers=bearer(tok[h]))
            if (a[0], a[2]) != (b[0], b[2]):
                return False
        return True
    c.check(wait_for(same_bytes, 5), "each feed is byte for byte the database feed")

    # --- the store's primary killed: the feed answers from the database, posts included
    primary.kill()
    p2 = post(ta, 3)
    c.check(wait_for(lambda: feed_ids(web, tok["bob"])[:1] == [p2], 5),
            "store down: bob's feed answers, alice's new post first (from the database)")
    c.check(c1 in feed_ids(web, tok["erin"]), "store down: erin's feed keeps celeb's post")
    c.check(metric(web, "millions_timeline_reads_total", 'result="unavailable"') >= 1,
            "the feed counts reads it took from the database")
    time.sleep(2)  # past a few redeliveries of the fan-out job
    primary.start()
    c.check(wait_for(lambda: p2 in timeline(users["bob"][0]["id"]), 30),
            "store back: the retried fan-out job writes alice's post into bob's timeline")
    c.check(p1 in timeline(users["bob"][0]["id"]), "and what was there before the kill stays (AOF)")
    hits = metric(web, "millions_timeline_reads_total", 'result="hit"')
    c.check(wait_for(lambda: feed_ids(web, tok["bob"])[:3] == [p2, c1, p1], 5),
            "bob's feed reads his timeline again, every post in order")
    c.check(metric(web, "millions_timeline_reads_total", 'result="hit"') > hits,
            "read as a timeline hit")
    c.check(wait_for(same_bytes, 5), "each feed is still the database feed, byte for byte")
    c.eq(metric(worker, "millions_fanout_jobs_total", 'status="failed"'), 0,
         "no fan-out job ended failed")
finally:
    for p in (worker, web, plain):
        p.stop()
    for r in (replica, primary):
        r.kill()
    nats.kill()
    pg.stop()

c.finish()
