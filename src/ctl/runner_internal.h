// The runner's insides, shared by its files (runner.cc: building, starting and supervising
// nodes; runner_status.cc: the admin API, status and metrics; runner_actions.cc: chaos and
// scaling; runner_adopt.cc: adoption after a runner death and the watchdog thread;
// runner_autoscale.cc: the autoscaler's thread; runner_dc.cc: DC failover and its monitor
// thread; runner_cli.cc: the commands that talk to a running runner; runner_hosts.cc: one host of
// several, `up --host`). Everything role-specific is
// in a recipe (ctl/recipe.h, recipes/): the supervisor calls recipes only through that interface.
// Not a public header. Thread-safety and ownership: see runner.h.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/http_client.h"
#include "core/pg.h"
#include "core/result.h"
#include "core/router.h"
#include "core/topology.h"
#include "ctl/autoscale.h"
#include "ctl/netns.h"
#include "ctl/process.h"
#include "ctl/prometheus.h"
#include "ctl/recipe.h"
#include "ctl/reshard_watch.h"

namespace millions::ctl::detail {

namespace json = boost::json;
using std::chrono::milliseconds;
using Clock = RunnerClock;

extern volatile sig_atomic_t g_stop;

// True when host:port can be bound for listening right now.
bool PortFree(const std::string& host, int port);
// `up` under --host, before anything starts (runner_hosts.cc): the first host makes every
// secret of the deployment; another host checks that they (and the upstream CA, when web nodes
// have TLS listeners) were copied from it. "" or what is wrong, naming what to copy.
std::string PrepareHostSecrets(const topo::Topology& t, const std::string& run_dir);
// Whether a /api/status body shows every node of this runner's (the others' hosts' rows aside)
// neither starting nor stopped: `up --detach` returns then.
bool AllLocalRunning(const std::string& status_body);
std::string Abs(const std::string& p);
// A request to the runner's admin API named by the topology's [runner] admin.
Result<http::Response> Admin(const std::string& topology, const std::string& method,
                             const std::string& target);

class Runner : private RecipeHost {
 public:
  // `admin_token`: the admin API's bearer token (admin_token.h); `detached`: stdout is the
  // runner's log, so the URL table does not carry the token.
  Runner(topo::Topology t, std::string topology_path, std::string admin_token, bool detached)
      : t_(std::move(t)),
        source_(std::move(topology_path)),
        recipes_(MakeRecipes()),
        admin_token_(std::move(admin_token)),
        detached_(detached) {}

  int Run();

 private:
  // RecipeHost: what recipes' hooks may ask of the supervisor.
  void Event(const std::string& node, const std::string& msg) override;
  std::vector<Node> Nodes(const std::string& kind) override;
  bool Stopping() const override { return g_stop != 0; }

  // Adds a node for every entry of every recipe (and every node added at run time) not yet
  // built, in stage order.
  void Build();
  bool Start(Node& n);
  bool WaitReady(Node& n, milliseconds timeout);
  void Supervise();
  void StopNode(Node& n, milliseconds grace);
  std::string StatusJson();
  // The reshard in progress, read from etcd by a thread of its own (reshard_watch.h); made at
  // first use in a sharded topology (etcd's credentials exist once `up` made them), else null.
  ReshardWatch* Reshard();
  std::string MetricsJson();
  // runner_graphs.cc: GET /metrics (every node's host metrics, from /proc at scrape time) and
  // the graphs' routes (GET /api/graphs, GET /api/graphs/{name}?range=): named queries asked
  // of Prometheus on the page's behalf.
  void AddGraphRoutes(http::Router& router);
  std::string PublicUrl() const;
  void ServeAdmin();
  // hold_ms (kill only): the supervisor leaves the node down this long, as a machine that
  // stays down would be (so that Patroni fails over instead of the old leader coming back).
  // part: one of the node's recipe's chaos parts; empty: the recipe's default for the action.
  // `chaos dc-down|dc-up DC`: every node of the DC killed (companions too) and held down until
  // dc-up, which lets the supervisor start them again at once. "" or what is wrong.
  std::string ActDc(const std::string& dc, bool up);
  // runner_dc.cc: DC failover (docs/datacentres.md). DcStart begins a planned failover to
  // `to` (or, `planned` false, a forced promotion: no fence, no catch-up, the old cluster fenced
  // in etcd as after a lost DC) on a thread of its own: "" or why not. DcJson: the
  // primary DC and the latest operation with its log, RTO and RPO. DcLoop: the monitor thread
  // that fails over when the primary DC is lost. DcRebuildIfFenced: before a node starts, the
  // data of a member fenced by an unplanned failover is removed (it rejoins as a standby).
  std::string DcStart(const std::string& to, bool planned);
  std::string DcJson();
  // Per DC of the topology: whether it takes writes and, with [postgres] primary_dc, its
  // database cluster and, for a standby cluster, its replication lag behind the primary (bytes;
  // -1 unreachable), as the monitor last measured it.
  json::array DcStatus();
  void DcLoop();
  void DcRebuildIfFenced(Node& n);
  const topo::PgClusterEntry* DcCluster(const std::string& dc) const;
  pg::Pool& DcPool(const topo::NodeEntry& e);  // the runner's superuser sessions to a member
  void DcLog(const std::string& line);
  std::string DcPlanned(const std::string& to);
  std::string DcUnplanned(const std::string& to, Clock::time_point lost_at);
  const topo::NodeEntry* DcWaitWrites(const topo::PgClusterEntry& c, milliseconds limit);
  std::string FenceInEtcd(const topo::PgClusterEntry& lost, const topo::NodeEntry& source);
  std::string Act(const std::string& node, const std::string& action, int hold_ms = 0,
                  const std::string& part = "");
  // Scales the nodes of a scalable kind (Recipe::ScaleTable) to `count`. Scaling down removes
  // `remove` first when it names one of them (the autoscaler: an idle worker), else the last.
  std::string Scale(const Recipe& recipe, int count, const std::string& remove = "");
  // The autoscaler (runner_autoscale.cc): its own thread while the runner supervises, stopped
  // by g_stop or autoscale_stop_. Samples each tier every interval, decides (autoscale.h) and
  // scales; AutoscaleJson is the latest samples and decisions, for the dashboard.
  struct AutoscaleMemory;
  void AutoscaleLoop();
  TierSample SampleWorkers(AutoscaleMemory& mem, json::object* view);
  TierSample SampleWeb(AutoscaleMemory& mem, json::object* view);
  std::string AutoscaleJson();
  void WriteEffectiveTopology();
  Node* Find(const std::string& name);
  const Recipe* RecipeOf(const std::string& kind) const;
  bool Root() const { return geteuid() == 0; }
  std::string EngineUser() const { return Root() ? t_.runner.engine_user : ""; }
  // The watchdog thread: every 250 ms, each recipe that asks for it (Recipe::Watchdog) watches
  // its nodes, until g_stop.
  void WatchdogLoop();
  // run/nodes.json: every running node's pid and start time, rewritten when they change, so
  // that a new runner over this run dir can adopt the nodes of one that died.
  void SaveNodes();
  // Reads run/nodes.json of a runner that died: its nodes added at run time (scaled up) rejoin
  // the topology; after Build, AdoptNodes takes over the processes still running and stops the
  // rest.
  void RestoreScaledNodes();
  void AdoptNodes();

  topo::Topology t_;
  std::string source_;
  std::vector<std::unique_ptr<Recipe>> recipes_;  // in stage order
  const std::string admin_token_;                 // never logged, never in status
  const bool detached_;
  RecipeContext ctx_;      // set by Run before Build
  std::string run_;        // absolute run dir
  std::string effective_;  // run/topology.toml: the source plus nodes added at run time
  // [network] mode netns: the namespaces the nodes run in (inactive: loopback). Set by Run
  // before Build; t_'s addresses are rewritten to it.
  netns::Network net_;
  // Picks the network ([network] mode), makes the namespaces when it is netns, says which.
  bool SetUpNetwork();
  // ---- hosts (runner_hosts.cc) ----
  // Under --host: the nodes of the other hosts, not ours to start, with their reachability as
  // last probed (state running when their check endpoint takes a connection, else stopped);
  // guarded by mu_. Build fills it; RemoteLoop probes them every second until remote_stop_.
  std::vector<Node> remote_;
  std::atomic<bool> remote_stop_{false};
  void RemoteLoop();
  // Status rows of the other hosts' nodes (host, remote: true), after this host's.
  void RemoteRows(json::array* out);
  // The host a node added at run time at `address` (host:port) runs on: the [[host]] with that
  // address, else this one (the first when none is selected); "" without hosts.
  std::string HostFor(const std::string& address) const;
  std::mutex mu_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::deque<std::pair<std::string, std::string>> events_;  // ts, text
  // Nodes added at run time (scale), by recipe, in the order they were added.
  std::vector<std::pair<const Recipe*, topo::NodeEntry>> extra_;
  std::mutex scale_mu_;
  json::array previous_;    // run/nodes.json as found at start
  std::string last_saved_;  // SaveNodes' last text
  boost::asio::io_context admin_ioc_;
  AutoscaleConfig autoscale_;                   // read by Run
  std::optional<PrometheusConfig> prometheus_;  // read by Run: [prometheus], when present
  DecisionLog decisions_;
  std::atomic<bool> autoscale_stop_{false};
  std::mutex autoscale_mu_;
  std::mutex reshard_mu_;
  std::unique_ptr<ReshardWatch> reshard_;
  json::object autoscale_view_;  // per tier ("worker", "web"): the latest sample; autoscale_mu_
  // DC failover (runner_dc.cc), guarded by dc_mu_.
  std::mutex dc_mu_;
  std::string primary_dc_;            // the DC whose cluster takes writes now
  bool dc_busy_ = false;              // an operation runs
  json::object dc_op_;                // the latest operation
  uint64_t dc_last_primary_lsn_ = 0;  // the primary's WAL position the monitor last saw
  std::map<std::string, std::unique_ptr<pg::Pool>> dc_pools_;  // by member; never erased
  std::map<std::string, int64_t> dc_lag_;         // a standby scope: bytes behind, -1 unreachable
  std::map<std::string, std::string> dc_source_;  // a standby scope: the member it streams from
  std::set<std::string> rebuild_;  // postgres nodes to rebuild at their next start; mu_
};

}  // namespace millions::ctl::detail
