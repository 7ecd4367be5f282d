// The topologies the scenarios run: written from a TopoSpec with every address on a free
// loopback port and the run directory under the scenario's work directory ("@RUN@", replaced by
// ScenarioEnv::Up), so a scenario never collides with `make up` or another run. Settings are
// small on purpose (one event-loop thread per web node, short health checks): the machine is
// shared, and the story is the ratio between before and after, not the peak.
#include <string>

#include "ctl/scenario_env.h"

namespace millions::ctl {

std::string ScenarioEnv::TopologyText(const TopoSpec& s) {
  if (!s.text.empty()) return s.text;
  std::string t;
  auto q = [](const std::string& v) { return "\"" + v + "\""; };
  auto node = [&](const std::string& table, const std::string& name, bool admin, bool rest,
                  const std::string& cluster = "") {
    t += "\n[[" + table + "]]\nname = " + q(name) + "\ndc = \"dc1\"\nlisten = " + q(FreeAddr()) +
         "\n";
    if (!cluster.empty()) t += "cluster = " + q(cluster) + "\n";
    if (admin) t += "admin = " + q(FreeAddr()) + "\n";
    if (rest) t += "rest = " + q(FreeAddr()) + "\n";
  };
  // Simulated users sign up from their own loopback addresses, but many of them: no throttle.
  t += "[auth]\nsignup_per_minute = 100000\n";
  t += "\n[deployment]\nname = " + q(s.name) + "\n\n[[dc]]\nname = \"dc1\"\n";
  t += "\n[runner]\nrun_dir = \"@RUN@\"\nadmin = " + q(FreeAddr()) + "\n";
  t += "\n[etcd]\nlisten = " + q(FreeAddr()) + "\npeer_listen = " + q(FreeAddr()) + "\n";
  t += "\n[web]\nthreads = " + std::to_string(s.web_threads) + "\nblocking_threads = 4\n";
  for (int i = 1; i <= s.web; ++i) node("web.node", "web" + std::to_string(i), false, false);
  if (s.lb > 0) {
    t += "\n[lb]\nthreads = 1\ncheck_interval_ms = 500\nrise = 2\nfall = 2\n";
    for (int i = 1; i <= s.lb; ++i) node("lb.node", "lb" + std::to_string(i), true, false);
  }
  t += "\n[postgres]\npool_size = 4\n";
  const bool sharded = s.logical_shards > 0;
  if (s.pg > 1 && !sharded) t += "\n[postgres.patroni]\nsynchronous_mode = true\n";
  for (int i = 1; i <= s.pg; ++i)
    node("postgres.node", "pg" + std::to_string(i), false, true,
         sharded ? "s" + std::to_string(i) : "");
  if (sharded)
    t += "\n[shards]\nfunction = \"balanced\"\nlogical = " + std::to_string(s.logical_shards) +
         "\ninitial = " + std::to_string(s.initial_shards) + "\n";
  t += "\n[cache]\ncapacity_bytes = " + std::to_string(s.l1_bytes) + "\n";
  for (int i = 1; i <= s.redis; ++i) node("redis.node", "redis" + std::to_string(i), false, false);
  t += "\n[workers]\nthreads = " + std::to_string(s.worker_threads) + "\n";
  t += "\n[queue]\nlease_ms = 5000\n";
  if (s.nats) {
    t += "\n[nats]\nstream_replicas = 1\n";
    node("nats.node", "nats1", true, false);
    for (int i = 1; i <= s.workers; ++i)
      node("worker.node", "worker" + std::to_string(i), false, false);
  }
  if (s.edge) {
    t += "\n[edge]\nthreads = 1\nmemory = \"32mb\"\ndisk_dir = \"@RUN@/edge\"\n";
    node("edge.node", "edge1", true, false);
  }
  t += s.extra;
  return t;
}

}  // namespace millions::ctl
