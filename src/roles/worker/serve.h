// `millions serve worker --config FILE --node NAME`: one worker node of a topology. It takes
// edit jobs from the NATS queue, runs them with libvips through the same Service the web tier
// runs (results stored, the photo's versions updated, caches invalidated), reports progress on
// long jobs, dead-letters jobs that keep failing, and publishes again any accepted job the queue
// lost. Its own listener serves /livez, /readyz and /metrics. SIGTERM: /readyz turns 503, the
// jobs in hand finish, then it exits (a job left unacked is delivered to another worker).
// Thread-safety: blocks the calling thread until stopped. Ownership: owns what it starts.
#pragma once

#include <string>

namespace millions::worker {

// Throws config::ConfigError for a bad topology or unknown node (exit code 2).
int Serve(const std::string& topology, const std::string& node);

}  // namespace millions::worker
