// The web role's node: the settings every web node shares (read by roles/web/settings.h from a
// topology's [web], [http], [cache], [media], [workers], [sessions] and [queue] tables; the cache
// nodes come from [[redis.node]]), and RunWebNode, which wires the service (src/app) onto the node
// harness and serves the API on a given Store and JobQueue until SIGTERM/SIGINT has drained it.
// `millions single` runs it on SQLite; `millions serve web` on PostgreSQL. Thread-safety:
// RunWebNode blocks the calling thread. Ownership: borrows store and queue.
#pragma once

#include <string>

#include "app/service.h"
#include "app/web.h"
#include "cache/l2.h"
#include "cache/tiered.h"
#include "cache/timeline.h"
#include "core/config.h"
#include "core/http_limits.h"
#include "data/store.h"
#include "queue/job_queue.h"

namespace millions::web {

struct WebNodeConfig {
  std::string name = "single";
  std::string role = "web";
  std::string dc = "dc1";
  std::string listen = "127.0.0.1:8080";
  // The TLS listener for the balancers ([lb] upstream_tls), beside `listen`; empty: none. Its
  // certificate and key (PEM), made by `millions up` in RUN_DIR/tls/upstream.
  std::string tls_listen;
  std::string tls_cert;
  std::string tls_key;
  int threads = 2;
  int blocking_threads = 4;
  std::string log_level = "info";
  http::Limits limits;
  cache::TieredOptions cache;  // L1 and the read-through policies ([cache])
  cache::RedisL2Options l2;    // the cache nodes ([[redis.node]]); none: L1 only
  // Cache nodes in several DCs (docs/datacentres.md): `l2` holds this node's DC's only, and
  // each other DC's are here, where its writes' invalidations go too (PlaceCacheByDc).
  std::vector<cache::RedisL2Options> l2_remote;
  app::WebOptions web;
  app::ServiceOptions service;
  int worker_threads = 2;
  int queue_lease_ms = 60'000;  // [queue] lease_ms: a claimed job returns after this
  // The queue on NATS ([[nats.node]] and [queue]); no servers: the PostgreSQL queue, and this
  // node runs worker threads itself.
  queue::NatsOptions nats;
  int reconcile_ms = 10'000;      // [queue] reconcile_ms: how often workers look for lost jobs
  int reconcile_age_ms = 30'000;  // [queue] reconcile_age_ms: how old a job must be to be lost
  // Feed fan-out: the timeline store ([[timeline.node]], [timeline]); no nodes: the feed is
  // read from the database.
  cache::TimelineOptions timelines;
  app::FeedOptions feed;
  int fanout_threads = 1;          // [timeline] fanout_threads: fan-out job threads per worker
  queue::NatsOptions fanout_nats;  // the fan-out jobs' stream, from `nats` (FanoutNatsOptions)
};

// The fan-out jobs' stream and consumer on the same servers as the edit jobs.
queue::NatsOptions FanoutNatsOptions(const queue::NatsOptions& edits);

// Returns the exit code (0 after a drain).
int RunWebNode(const WebNodeConfig& cfg, data::Store& store, queue::JobQueue& queue);

}  // namespace millions::web
