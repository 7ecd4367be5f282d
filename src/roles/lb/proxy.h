// The load balancer (`millions serve lb`): an HTTP/1.1 reverse proxy on the shared core server.
// Picks a backend by policy, forwards over a per-backend keep-alive pool, sets X-Forwarded-For,
// X-Forwarded-Proto, Forwarded and X-Request-Id itself (client-sent values are dropped, never
// trusted), retries a request that could not connect on another node and an idempotent one
// once on a reset, checks backends actively and ejects outliers, limits each client IP with a
// token bucket, and picks up pool changes at run time from the runner without a restart.
// Config reload on SIGHUP without dropping connections.
// HTTPS on its own listener when configured (HTTP stays on its port). Bodies over 256 KiB (and
// chunked ones) are streamed both ways, never held whole. The pieces: the upstream client and
// membership in core (upstream.h, membership.h), the balancer in proxy_internal.h.
// Thread-safety: Run blocks the caller until SIGTERM/SIGINT has drained it.
// Ownership: owns its listeners, pools and health state.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "roles/lb/balancer.h"
#include "roles/lb/settings.h"

namespace millions::lb {

struct LbConfig {
  // This node, from its [[lb.node]].
  std::string name = "lb1";
  std::string listen = "127.0.0.1:8080";  // public
  std::string admin = "127.0.0.1:9080";   // status, metrics: never on the public listener
  std::string tls_listen;                 // HTTPS, beside the plain listener (optional)
  // What every balancer of the topology shares: [lb] and [http] (settings.h).
  Settings settings;
  // Not in the topology.
  int connect_timeout_ms = 1000;
  int backend_timeout_ms = 30000;
  std::vector<Backend> backends;  // the pool at start
  std::string runner_admin;       // host:port of `millions up`'s admin API; empty: static pool
  std::string runner_token;       // its admin token (read from MILLIONS_RUNNER_TOKEN_FILE)
  // SIGHUP: called to read the configuration again (nullopt when it is now invalid, which keeps
  // the running one). Policy, pool, health and rate limits change in place; listeners, threads
  // hash_header and pipeline_depth need a restart.
  std::function<std::optional<LbConfig>()> reload;
};

int Run(const LbConfig& cfg);

}  // namespace millions::lb
