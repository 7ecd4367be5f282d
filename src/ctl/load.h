// `millions load`: simulated users against a running service. Users sign up and log in, then
// browse Zipf-popular users, read feeds, follow, upload and request edits, in proportions the
// mix names. Closed loop (each user waits for its answer) or open loop at a fixed rate, where
// latency is measured from when a request was due, so queueing is not hidden (no coordinated
// omission). A live progress line on stderr; a final table of successes per second (2xx and
// 3xx; errors never count as throughput), latency percentiles of successes and of all requests,
// and errors by kind (connect_error, timeout, io_error, http_4xx, http_5xx) and by status. Every
// run is bounded in time and sends only to the target given. On a loopback target each simulated
// user signs up from its own address (127.100.x.y), as real users do: sign-ups are throttled per
// client address (docs/security.md). Thread-safety: RunLoad blocks the
// caller. Ownership: owns its connections.
#pragma once

#include <string>

namespace millions::ctl {

struct LoadFlags {
  std::string target = "http://127.0.0.1:8080";  // or several, comma-separated
  int users = 20;
  int duration_s = 30;
  std::string mix = "default";  // default | browse | write
  double rate = 0;              // requests/s; 0: closed loop
  int connections = 64;         // open loop: most connections at once
  std::string json_out;         // also write the summary as JSON here
  int max_errors = -1;          // exit 1 when errors exceed this; -1: no limit
  // Non-empty: the target is where the deployment's DNS sends this region (load_region.h).
  std::string region;
  std::string topology = "topologies/local.toml";  // for --region
};

int RunLoad(const LoadFlags& flags);

}  // namespace millions::ctl
