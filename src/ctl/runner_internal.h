// The runner's insides, shared by its files (runner.cc: building, starting and supervising
// nodes; runner_status.cc: the admin API, status and metrics; engines.cc: talking to the engines;
// runner_cli.cc: the commands that talk to a running runner). Not a public header.
// Thread-safety and ownership: see runner.h.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/topology.h"
#include "core/http_client.h"
#include "core/result.h"
#include "ctl/process.h"

namespace millions::ctl::detail {

namespace json = boost::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

extern volatile sig_atomic_t g_stop;

struct Node {
  std::string name, role, dc, address;
  std::string check_host;  // readiness: GET http://check_host:check_port/check_path -> 200
  int check_port = 0;
  std::string check_path;
  Spawn spawn;
  pid_t pid = 0;
  std::string state = "stopped";  // starting | running | failed | stopped
  bool wanted = true;             // false once removed or while `down` runs
  bool paused = false;
  int failures = 0;
  Clock::time_point next_start{}, started_at{};
  Clock::time_point hold_until{};  // chaos kill --hold: no restart before this
  std::string pg_data_dir;         // patroni nodes
  // Adopted from a runner that died: not our child, so its end is seen by pid and start time
  // rather than waitpid. start_ticks names the process (pids are reused).
  bool adopted = false;
  uint64_t start_ticks = 0;
};

std::string Abs(const std::string& p);
// The postmaster of the PostgreSQL a Patroni node manages, or 0 when it is not running.
pid_t Postmaster(const Node& n);
// Signals that PostgreSQL whole: the postmaster and every backend (each in a session of its
// own). False when it is not running.
bool SignalPostgres(const Node& n, int sig);

// True when host:port can be bound for listening right now.
bool PortFree(const std::string& host, int port);
// Whether the node answers its readiness check (HTTP 200, or PONG for Redis).
bool Ready(const Node& n, milliseconds timeout = milliseconds(800));
// Patroni's /cluster members (any member answers for all), from the first that answers;
// empty when none does.
json::array PatroniMembers(const std::vector<std::pair<std::string, int>>& rests,
                           milliseconds timeout);
std::string PatroniYaml(const topo::Topology& t, const topo::NodeEntry& n, const std::string& dir);
// A cache node's memory, keys and evictions (Redis INFO) into its status object.
void AddRedisInfo(const Node& n, json::object* o);
// A request to the runner's admin API named by the topology's [runner] admin.
Result<http::Response> Admin(const std::string& topology, const std::string& method,
                             const std::string& target);

class Runner {
 public:
  Runner(topo::Topology t, std::string topology_path)
      : t_(std::move(t)), source_(std::move(topology_path)) {}

  int Run();

 private:
  void Build();
  void Event(const std::string& node, const std::string& msg);
  bool Start(Node& n);
  bool WaitReady(Node& n, milliseconds timeout);
  Status CreateDatabase();
  void Supervise();
  void StopNode(Node& n, milliseconds grace);
  std::string StatusJson();
  std::string MetricsJson();
  std::string PublicUrl() const;
  void ServeAdmin();
  // hold_ms (kill only): the supervisor leaves the node down this long, as a machine that
  // stays down would be (so that Patroni fails over instead of the old leader coming back).
  // part (patroni nodes): "patroni", "postgres" or "host"; empty: host for kill, patroni else.
  std::string Act(const std::string& node, const std::string& action, int hold_ms = 0,
                  const std::string& part = "");
  std::string ScaleWeb(int count);
  void WriteEffectiveTopology();
  Node* Find(const std::string& name);
  bool Root() const { return geteuid() == 0; }
  std::string EngineUser() const { return Root() ? t_.runner.engine_user : ""; }

  topo::Topology t_;
  std::string source_;
  std::string run_;        // absolute run dir
  std::string effective_;  // run/topology.toml: the source plus nodes added at run time
  std::mutex mu_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::deque<std::pair<std::string, std::string>> events_;  // ts, text
  std::vector<topo::NodeEntry> extra_web_;
  std::mutex scale_mu_;
  std::string leader_;  // Patroni's leader as last seen (guarded by mu_)
  void WatchLeader();
  // The watchdog: kills the leader's whole node when its Patroni stops answering (topology
  // [postgres.patroni] fence_after_ms). Runs on a thread of its own until g_stop.
  void FenceLoop();
  void Fence(Node& n, const std::string& why);
  // run/nodes.json: every running node's pid and start time, rewritten when they change, so
  // that a new runner over this run dir can adopt the nodes of one that died.
  void SaveNodes();
  // Reads run/nodes.json of a runner that died: its scaled-up web nodes rejoin the topology;
  // after Build, AdoptNodes takes over the processes still running and stops the rest.
  void RestoreScaledNodes();
  void AdoptNodes();
  json::array previous_;    // run/nodes.json as found at start
  std::string last_saved_;  // SaveNodes' last text
  boost::asio::io_context admin_ioc_;
};

}  // namespace millions::ctl::detail
