// The Patroni recipe: each [[postgres.node]] is a Patroni managing its own PostgreSQL (the
// "companion" that chaos --part postgres strikes and `down` stops if Patroni leaves it behind).
// Split in two files: patroni.cc (spawn, readiness, database creation, status, chaos) and
// patroni_fence.cc (the leader watch and the fencing watchdog, docs/faults.md).
// Thread-safety: leader_ is guarded by mu_ (the supervisor's Tick and the watchdog's Watch);
// the fence state is the watchdog thread's alone. Ownership: the runner owns the recipe.
#pragma once

#include <sys/types.h>

#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ctl/recipe.h"

namespace millions::ctl::patroni {

using std::chrono::milliseconds;
using Clock = RunnerClock;

// A Patroni node's own state: the data directory of its PostgreSQL.
struct Extra : NodeExtra {
  std::string data_dir;
  std::string cluster;    // the database cluster (shard) it belongs to: "" when not sharded
  int cluster_index = 0;  // its place among the topology's clusters (status' "shard")
  std::string scope;      // its Patroni scope (a DC's cluster with [postgres] primary_dc)
};

// The Patroni nodes of `nodes` by Patroni scope (Extra::scope), for per-cluster questions: each
// cluster is its own Patroni scope with its own leader.
std::map<std::string, std::vector<Node>> ByCluster(const std::vector<Node>& nodes);

// Sharded topologies (shards.cc): after every cluster has a primary and the application's
// database, the shard map is created in etcd if absent (as the `shardmap` user), and each
// cluster is migrated and its fence's ownership filled from the map (data/shard_fence.h).
Status SetUpShards(const RecipeContext& ctx, RecipeHost& host);
// status --json's "shards": per cluster its name, Patroni scope, primary (from the postgres
// rows of `nodes`), logical shards held and the map's version (read from etcd now).
boost::json::array ShardsStatus(const RecipeContext& ctx, const boost::json::array& nodes);

// The postmaster of the PostgreSQL a Patroni node manages, or 0 when it is not running.
pid_t Postmaster(const Node& n);
// Signals that PostgreSQL whole: the postmaster and every backend (each in a session of its
// own). False when it is not running.
bool SignalPostgres(const Node& n, int sig);
// Patroni's /cluster members (any member answers for all), from the first that answers;
// empty when none does.
boost::json::array Members(const std::vector<std::pair<std::string, int>>& rests,
                           milliseconds timeout);

class PatroniRecipe : public Recipe {
 public:
  const char* Kind() const override { return "patroni"; }
  int Stage() const override { return 1; }
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override {
    return t.postgres;
  }
  void Check(const topo::Topology& t, const std::string& source) const override;
  Status Prepare(const RecipeContext& ctx) const override;
  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override;
  bool Ready(const Node& n, milliseconds timeout) const override;
  Status AfterReady(const RecipeContext& ctx, RecipeHost& host) const override;
  void AfterStop(const Node& n) const override;
  StatusWriter StatusRows(const std::vector<Node>& nodes) const override;
  void TierFields(const RecipeContext& ctx, boost::json::object* fields) const override;

  std::vector<ChaosPart> Parts() const override {
    return {{"patroni", true, false}, {"postgres", false, true}, {"host", true, true}};
  }
  // Killing a database node kills the machine by default: Patroni and its PostgreSQL with its
  // backends, so the old primary cannot take one more write (fencing). A pause stops Patroni.
  std::string DefaultPart(const std::string& action) const override {
    return action == "kill" ? "host" : "patroni";
  }
  std::string CompanionName() const override { return "PostgreSQL"; }
  bool CompanionRunning(const Node& n) const override { return Postmaster(n) > 0; }
  bool SignalCompanion(const Node& n, int sig) const override { return SignalPostgres(n, sig); }
  // As status shows it: NAME-pg, role postgres.
  CompanionProcess Companion(const Node& n) const override {
    return {n.name + "-pg", "postgres", Postmaster(n)};
  }

  // A promotion is an event like a death: the dashboard shows it as it happens.
  void Tick(const RecipeContext& ctx, RecipeHost& host) override;
  // The watchdog: kills the leader's whole node when its Patroni (or its PostgreSQL) stops
  // answering (topology [postgres.patroni] fence_after_ms).
  bool Watchdog(const RecipeContext& ctx) const override;
  void Watch(const RecipeContext& ctx, RecipeHost& host) override;

 private:
  void Fence(const Node& n, const std::string& why, RecipeHost& host);

  std::mutex mu_;
  // Patroni's leader of each cluster as last seen (guarded by mu_).
  std::map<std::string, std::string> leader_;
  // The watchdog's view of each cluster's leader, and when each part last answered.
  struct Watched {
    std::string name;
    pid_t pid = 0;
    Clock::time_point patroni_ok{}, pg_ok{};
  };
  std::map<std::string, Watched> watched_;
  void WatchLeader(const RecipeContext& ctx, RecipeHost& host, const std::string& cluster,
                   const std::string& leader, const std::vector<Node>& nodes);
};

}  // namespace millions::ctl::patroni
