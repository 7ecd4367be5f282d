// Stage 1: the whole photo service in one process: HTTP server, SQLite store, in-process
// cache, durable in-process queue and worker threads. `millions single` runs it.
// Thread-safety: RunSingle blocks the calling thread until SIGINT/SIGTERM has drained it.
// Ownership: RunSingle owns everything it starts.
#pragma once

#include <optional>
#include <string>

namespace millions::web {

struct SingleFlags {
  // Empty: topologies/single.toml when it exists (from the repository), else built-in defaults.
  std::string topology;
  std::optional<int> port;
  std::optional<std::string> data_dir;
  std::optional<std::string> host;
};

// Returns the process exit code. Throws config::ConfigError / std::runtime_error on bad start-up
// input (main turns them into exit code 1 or 2 with the message).
int RunSingle(const SingleFlags& flags);

}  // namespace millions::web
