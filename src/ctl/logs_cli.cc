// `millions logs`: finds the run dir and the nodes' roles from the topology, then prints the
// merged log (ctl/logs.h), and with -f follows it.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/config.h"
#include "core/env.h"
#include "core/topology.h"
#include "ctl/logs.h"
#include "ctl/recipe.h"

namespace millions::ctl {
namespace {

volatile sig_atomic_t g_logs_stop = 0;
void OnLogsSignal(int) { g_logs_stop = 1; }

// Every node's role, from the effective topology (it names the nodes `scale` added) when the
// run left one, else the source.
std::map<std::string, std::string> Roles(const topo::Topology& t, const std::string& run_dir) {
  std::map<std::string, std::string> roles;
  auto fill = [&](const topo::Topology& from) {
    for (const auto& r : MakeRecipes())
      for (const auto& e : r->Entries(from)) roles[e.name] = r->Kind();
  };
  fill(t);
  std::error_code ec;
  if (std::filesystem::exists(run_dir + "/topology.toml", ec)) {
    try {
      fill(topo::Topology::Load(run_dir + "/topology.toml"));
    } catch (const std::exception&) {
      // A half-written or older file: the source's roles will do.
    }
  }
  return roles;
}

}  // namespace

int RunLogs(const LogsFlags& flags) {
  topo::Topology t = topo::Topology::Load(flags.topology);
  logs::Filter f = flags.filter;
  if (!flags.since.empty()) {
    auto since = logs::ParseSince(flags.since, Env::Default().WallMillis());
    if (!since)
      throw config::ConfigError("--since " + flags.since +
                                ": not a duration (90s, 15m, 2h, 1d) or an RFC 3339 time");
    f.since = *since;
  }
  std::string run_dir = std::filesystem::absolute(t.runner.run_dir).lexically_normal().string();
  auto roles = Roles(t, run_dir);
  auto sources = logs::FindSources(run_dir, roles);
  if (sources.empty()) {
    fprintf(stderr,
            "millions logs: no run found: %s/logs holds no logs (start one with `millions up %s`, "
            "from the same directory)\n",
            run_dir.c_str(), flags.topology.c_str());
    return 1;
  }
  auto print = [&](const logs::Record& r) {
    const std::string& text = flags.json ? r.line : logs::Readable(r);
    fwrite(text.data(), 1, text.size(), stdout);
    fputc('\n', stdout);
  };
  logs::Positions pos = logs::Merge(sources, f, print);
  fflush(stdout);
  if (!flags.follow) return 0;
  signal(SIGINT, OnLogsSignal);
  signal(SIGTERM, OnLogsSignal);
  logs::Follower follower(f, std::move(pos));
  while (!g_logs_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    // Looked for again each time: nodes added by `scale` while following.
    follower.Poll(logs::FindSources(run_dir, roles), print);
    fflush(stdout);
  }
  return 0;
}

}  // namespace millions::ctl
