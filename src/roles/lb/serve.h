// `millions serve lb --config FILE --node NAME`: one balancer of a topology, fed by the
// topology's web nodes and, under `millions up`, by the runner's live view of them.
// Thread-safety: blocks the calling thread until drained. Ownership: none kept.
#pragma once

#include <string>

namespace millions::lb {

// Throws config::ConfigError for a bad topology or unknown node (exit code 2).
int Serve(const std::string& topology, const std::string& node);

}  // namespace millions::lb
