// `millions serve edge --config FILE --node NAME`: one CDN edge of a topology (docs/edge.md): the
// public listener answering from its cache or its origin, and the admin listener with /livez,
// /readyz, /metrics, GET /status and POST /purge.
// Thread-safety: blocks the calling thread until drained. Ownership: none kept.
#pragma once

#include <string>

namespace millions::edge {

// Throws config::ConfigError for a bad topology or unknown node (exit code 2).
int Serve(const std::string& topology, const std::string& node);

}  // namespace millions::edge
