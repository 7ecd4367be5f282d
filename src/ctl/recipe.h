// Runner recipes: one per kind of node `millions up` runs (etcd, patroni, redis, nats, web,
// worker, lb; later edge, dns, prometheus). A recipe says how to build the nodes of its kind from
// the topology (argv, env, dirs, user), when one is ready, what it adds to status and metrics, what
// `chaos` strikes in it, and when it starts (its stage). The supervisor (runner*.cc) starts,
// restarts, stops, adopts and scales nodes knowing nothing role-specific: it calls recipes only
// through this interface. The table of recipes is recipes.cc.
// Thread-safety: a recipe's hooks are called from the supervisor, admin and watchdog threads at
// once; a recipe with state of its own (patroni: the leader it last saw) guards it itself.
// Ownership: each runner owns one instance of every recipe (MakeRecipes) for its life; a node
// owns its per-kind state (Node::extra), shared with the copies status takes.
#pragma once

#include <sys/types.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "core/topology.h"
#include "ctl/process.h"

namespace millions::ctl {

class Recipe;
using RunnerClock = std::chrono::steady_clock;

// A recipe's own state in each of its nodes (e.g. Patroni's data directory). Immutable once the
// node is built.
struct NodeExtra {
  virtual ~NodeExtra() = default;
};

// One supervised node. The recipe fills name to extra (Recipe::Make); the supervisor owns the rest.
struct Node {
  std::string name, role, dc, address;
  std::string host;  // its topology entry's [[host]], or "" (ctl/runner_hosts.cc)
  // The node's TLS listener (its topology entry's tls_listen: a balancer's or edge's HTTPS, a
  // web node's listener for the balancers), or "".
  std::string tls_address;
  // The node's own endpoint for readiness, status and metrics (Patroni's REST API, a balancer's
  // admin listener; for most nodes their listen address).
  std::string check_host;
  int check_port = 0;
  Spawn spawn;
  std::string netns;  // set by the supervisor: the namespace it runs in (ctl/netns.h), or ""
  std::shared_ptr<const NodeExtra> extra;
  const Recipe* recipe = nullptr;  // set by the supervisor
  pid_t pid = 0;
  std::string state = "stopped";  // starting | running | failed | stopped
  bool wanted = true;             // false once removed or while `down` runs
  bool paused = false;
  int failures = 0;
  RunnerClock::time_point next_start{}, started_at{};
  RunnerClock::time_point hold_until{};  // chaos kill --hold: no restart before this
  // Adopted from a runner that died: not our child, so its end is seen by pid and start time
  // rather than waitpid. start_ticks names the process (pids are reused).
  bool adopted = false;
  uint64_t start_ticks = 0;
};

// What recipes read: the topology and where this runner keeps things.
struct RecipeContext {
  const topo::Topology* topology = nullptr;
  std::string run_dir;      // absolute
  std::string self;         // our own binary (web nodes and balancers run it)
  std::string effective;    // run/topology.toml: the source plus nodes added at run time
  std::string engine_user;  // engines run as this user (when the runner is root), else empty
};

// What the supervisor lends recipes' hooks.
class RecipeHost {
 public:
  virtual ~RecipeHost() = default;
  // An event for the log and the dashboard.
  virtual void Event(const std::string& node, const std::string& msg) = 0;
  // Copies of the nodes of one kind, taken under the supervisor's lock (hooks do I/O outside it).
  virtual std::vector<Node> Nodes(const std::string& kind) = 0;
  virtual bool Stopping() const = 0;
};

// A part of a node that `chaos --part NAME` strikes: its supervised process group, the
// companion processes it runs in groups of their own (Patroni's PostgreSQL), or both.
struct ChaosPart {
  std::string name;
  bool process = true;
  bool companion = false;
};

class Recipe {
 public:
  virtual ~Recipe() = default;

  // ---- building and starting -------------------------------------------------------------
  // The node's role in status, logs and nodes.json ("etcd", "patroni", ...).
  virtual const char* Kind() const = 0;
  // Start order: every node of a lower stage is ready before a higher stage starts; `down`
  // stops them in reverse.
  virtual int Stage() const = 0;
  // The nodes of this kind the topology names.
  virtual std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const = 0;
  // The node for entry `e`: name, dc, address, check endpoint, spawn and extra. May create its
  // directories and files.
  virtual Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const = 0;
  // What `up` needs of the topology beyond what it parses; throws config::ConfigError naming
  // `source` (start-up only, before the runner detaches).
  virtual void Check(const topo::Topology&, const std::string& /*source*/) const {}
  // Before any node is built: files the nodes need (lb: a self-signed certificate).
  virtual Status Prepare(const RecipeContext&) const { return Ok(); }
  // True: the nodes of this kind are all started, then awaited (etcd: healthy only as a quorum).
  virtual bool StartTogether() const { return false; }
  // Whether the node answers its readiness probe.
  virtual bool Ready(const Node& n, std::chrono::milliseconds timeout) const = 0;
  // At start-up, once every node of this kind is ready (patroni: wait for a leader and create
  // the application's database). An error stops `up`.
  virtual Status AfterReady(const RecipeContext&, RecipeHost&) const { return Ok(); }
  // Once a node's process group has ended (down, scale): companions it leaves behind stopped.
  virtual void AfterStop(const Node&) const {}

  // ---- status and metrics ------------------------------------------------------------------
  // Writes a node's rows: `row` holds name, role, dc, address, state and pid.
  using StatusWriter =
      std::function<void(const Node& n, boost::json::object row, boost::json::array* out)>;
  // The writer for one status request, given copies of this kind's nodes: what it asks of the
  // cluster once (patroni: the members' timelines and lag) is asked here. Default: the row.
  virtual StatusWriter StatusRows(const std::vector<Node>& nodes) const;
  // True: the runner sums its running nodes' /metrics (at the check endpoint) as a tier.
  virtual bool Scraped() const { return false; }
  // Fields added to every tier of the metrics summary (patroni: the database's connections).
  virtual void TierFields(const RecipeContext&, boost::json::object*) const {}
  // The public URL when this kind faces clients; the outermost stage that has one wins.
  virtual std::string PublicUrl(const topo::Topology&) const { return ""; }
  // Lines for `up`'s banner after the public URL (label, text).
  virtual void Banner(const topo::Topology&,
                      std::vector<std::pair<std::string, std::string>>*) const {}

  // ---- chaos -------------------------------------------------------------------------------
  // The `--part` values this kind takes; none: the node is its process group, nothing else.
  virtual std::vector<ChaosPart> Parts() const { return {}; }
  // The part an action strikes when none is named (patroni: the host for kill, else Patroni).
  virtual std::string DefaultPart(const std::string& /*action*/) const { return ""; }
  // What the companion is called in errors ("PostgreSQL").
  virtual std::string CompanionName() const { return ""; }
  virtual bool CompanionRunning(const Node&) const { return false; }
  // Signals every companion process; false when none runs.
  virtual bool SignalCompanion(const Node&, int /*sig*/) const { return false; }
  // The companion as a node of its own for host metrics (host_metrics.h), named and with the
  // role status shows it under; pid 0 when none runs. Its process tree is not under the node's
  // (pg_ctl starts PostgreSQL in a session of its own).
  struct CompanionProcess {
    std::string name, role;
    pid_t pid = 0;
  };
  virtual CompanionProcess Companion(const Node&) const { return {}; }

  // ---- scaling -------------------------------------------------------------------------------
  // Non-empty: nodes of this kind can be added at run time (`scale`), and are written to this
  // table of the effective topology ("web.node").
  virtual std::string ScaleTable() const { return ""; }

  // ---- supervision -----------------------------------------------------------------------
  // Once a second while supervising (patroni: who leads now).
  virtual void Tick(const RecipeContext&, RecipeHost&) {}
  // True: Watch runs every 250 ms on the watchdog thread (patroni: fencing a frozen leader).
  virtual bool Watchdog(const RecipeContext&) const { return false; }
  virtual void Watch(const RecipeContext&, RecipeHost&) {}
};

// The table: a fresh instance of every recipe, in stage order.
std::vector<std::unique_ptr<Recipe>> MakeRecipes();

// ---- helpers recipes share (engines.cc) -------------------------------------------------------
// A node named by its topology entry, with `check` (host:port) as its check endpoint.
Node NodeFor(const topo::NodeEntry& e, const std::string& check);
// GET http://host:port/path answers 200 within `timeout`.
bool HttpReady(const std::string& host, int port, const std::string& path,
               std::chrono::milliseconds timeout);
// A node's log file under the run dir.
std::string LogPath(const RecipeContext& ctx, const std::string& node);

}  // namespace millions::ctl
