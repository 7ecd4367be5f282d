// `millions serve ROLE --config FILE --node NAME`: one node of a topology. Stage 2 has the web
// role: the API on PostgreSQL, with the job queue in PostgreSQL and workers in every web node.
// Thread-safety: blocks the calling thread until drained. Ownership: owns what it starts.
#pragma once

#include <string>

namespace millions::web {

// Throws config::ConfigError for a bad topology or unknown node (exit code 2).
int ServeWeb(const std::string& topology, const std::string& node);

}  // namespace millions::web
