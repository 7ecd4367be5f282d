// `millions reshard` (reshard.h): the command, the next map from the flags, the lock and
// `--status`. The executor that runs a plan is reshard_run.cc.
#include "ctl/reshard.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "core/config.h"
#include "core/env.h"
#include "core/pg.h"
#include "core/secret.h"
#include "core/topology.h"
#include "ctl/reshard_run.h"
#include "ctl/secrets.h"
#include "ctl/seed.h"
#include "data/ids.h"
#include "data/reshard_etcd.h"
#include "data/shard_fence.h"
#include "data/shard_map.h"
#include "data/shard_map_etcd.h"
#include "roles/web/data_layer.h"

namespace millions::ctl {
namespace {

constexpr int kLockTtlS = 10;

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "millions reshard: %s\n", why.c_str());
  return 2;
}

const topo::PgClusterEntry* FindCluster(const topo::Topology& t, const std::string& name) {
  for (const auto& c : t.pg_clusters)
    if (c.name == name) return &c;
  return nullptr;
}

// --isolate USER: a user id, or a handle; the logical shard is the id's or the handle's, and
// the user must exist on the cluster that holds it.
Result<int> IsolatedShard(const topo::Topology& t, const std::string& run_dir,
                          const data::ShardMap& map, const std::string& user) {
  const int L = map.logical();
  auto id = data::ParseId(user);
  const int logical = id ? data::ShardOf(*id) % L : data::LogicalShardOfHandle(user, L);
  const topo::PgClusterEntry* c = FindCluster(t, map.ClusterOf(logical));
  if (!c) return MakeError(Errc::kBadInput, "unknown_cluster", "the map names an unknown cluster");
  pg::Pool pool(ClusterWriterPg(t, *c, run_dir, "millions-reshard"));
  auto conn = pool.Acquire();
  if (!conn.ok()) return conn.error();
  auto r = id ? (*conn)->Exec("find_user_id", "SELECT id FROM users WHERE id = $1", {pg::P(*id)})
              : (*conn)->Exec("find_user_handle", "SELECT id FROM users WHERE handle = $1",
                              {pg::P(user)});
  if (!r.ok()) return r.error();
  if (r->empty())
    return MakeError(Errc::kNotFound, "no_user",
                     "no user " + user + " on cluster " + c->name + " (logical shard " +
                         std::to_string(logical) + ")");
  return logical;
}

// The map the flags ask for, from the map in force.
Result<data::ShardMap> NextMap(const topo::Topology& t, const std::string& run_dir,
                               const data::ShardMap& current, const ReshardFlags& f) {
  const int given = (f.shards > 0) + !f.add.empty() + !f.isolate.empty();
  if (given != 1)
    return MakeError(Errc::kBadInput, "usage",
                     "give one of --shards N, --add CLUSTER, --isolate USER (or --status)");
  auto function = data::MakeShardFunction(t.shards.function);
  if (!function)
    return MakeError(Errc::kBadInput, "usage", "unknown shard function " + t.shards.function);
  std::vector<std::string> clusters;
  if (f.shards > 0) {
    if (f.shards > static_cast<int>(t.pg_clusters.size()))
      return MakeError(Errc::kBadInput, "usage",
                       "--shards " + std::to_string(f.shards) + ": the topology has " +
                           std::to_string(t.pg_clusters.size()) + " clusters");
    for (int i = 0; i < f.shards; ++i) clusters.push_back(t.pg_clusters[size_t(i)].name);
    return data::NextShardMap(*function, clusters, current.logical(), &current);
  }
  const auto counts = current.Counts();
  if (!f.add.empty()) {
    if (!FindCluster(t, f.add))
      return MakeError(Errc::kBadInput, "usage",
                       "--add " + f.add + ": the topology has no such cluster");
    for (size_t i = 0; i < current.clusters.size(); ++i)
      if (counts[i] > 0) clusters.push_back(current.clusters[i]);
    if (std::find(clusters.begin(), clusters.end(), f.add) != clusters.end())
      return MakeError(Errc::kBadInput, "usage", "--add " + f.add + ": it holds shards already");
    clusters.push_back(f.add);
    return data::NextShardMap(*function, clusters, current.logical(), &current);
  }
  auto logical = IsolatedShard(t, run_dir, current, f.isolate);
  if (!logical.ok()) return logical.error();
  std::string to = f.to;
  if (to.empty()) {  // the first cluster of the topology that holds nothing
    for (const auto& c : t.pg_clusters) {
      auto at = std::find(current.clusters.begin(), current.clusters.end(), c.name);
      if (at == current.clusters.end() || counts[size_t(at - current.clusters.begin())] == 0) {
        to = c.name;
        break;
      }
    }
    if (to.empty())
      return MakeError(
          Errc::kBadInput, "usage",
          "every cluster holds shards: add one to the topology, or name one with --to");
  } else if (!FindCluster(t, to)) {
    return MakeError(Errc::kBadInput, "usage", "--to " + to + ": no such cluster");
  }
  data::ShardMap next = current;
  auto at = std::find(next.clusters.begin(), next.clusters.end(), to);
  if (at == next.clusters.end()) {
    next.clusters.push_back(to);
    at = next.clusters.end() - 1;
  }
  next.owner[size_t(*logical)] = static_cast<uint16_t>(at - next.clusters.begin());
  next.version = current.version + 1;
  std::fprintf(stderr, "millions reshard: %s is on logical shard %d: it moves to %s\n",
               f.isolate.c_str(), *logical, to.c_str());
  return next;
}

std::string Ago(int64_t ms) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f s ago", std::max<int64_t>(ms, 0) / 1000.0);
  return buf;
}

int PrintPlanStatus(data::ReshardEtcd& etcd) {
  auto holder = etcd.Holder();
  auto plan = etcd.ReadPlan();
  if (!plan.ok()) {
    std::fprintf(stderr, "millions reshard --status: %s\n", plan.error().message.c_str());
    return 1;
  }
  const int64_t now = Env::Default().WallMillis();
  if (holder.ok() && *holder)
    std::printf("running: pid %lld on %s, started %s\n", static_cast<long long>((*holder)->pid),
                (*holder)->host.c_str(), Ago(now - (*holder)->started_ms).c_str());
  else
    std::printf("no reshard running\n");
  if (!*plan) {
    std::printf("no reshard recorded\n");
    return 0;
  }
  const data::ReshardPlan& p = **plan;
  std::string from, to;
  for (const auto& c : p.from.clusters) from += (from.empty() ? "" : ",") + c;
  for (const auto& c : p.to.clusters) to += (to.empty() ? "" : ",") + c;
  std::printf("plan: map version %lld (%s) to %s, %zu logical shards move; %s\n",
              static_cast<long long>(p.from.version), from.c_str(), to.c_str(), p.moves.size(),
              p.done() ? "done" : "not done: `millions reshard` resumes it");
  std::printf("started %s, last step %s\n", Ago(now - p.started_ms).c_str(),
              Ago(now - p.updated_ms).c_str());
  std::map<std::string, int> states;
  std::map<std::string, int> pairs;
  for (const auto& m : p.moves) {
    ++states[std::string(data::MoveStateName(m.state))];
    ++pairs[m.from + " -> " + m.to];
  }
  std::printf("moves:");
  for (const auto& [pair, n] : pairs) std::printf("  %s: %d", pair.c_str(), n);
  std::printf("\nstates:");
  for (int s = 0; s <= static_cast<int>(data::MoveState::kCleaned); ++s) {
    const std::string name(data::MoveStateName(static_cast<data::MoveState>(s)));
    if (states.count(name)) std::printf("  %s %d", name.c_str(), states[name]);
  }
  // Progress as of the last step (the rate over the whole run so far).
  std::printf("\n%s\n", data::ProgressLine(data::Progress(p, p.updated_ms)).c_str());
  const PauseStats ps = Pauses(p);
  if (ps.count > 0)
    std::printf("write pause per shard (%d): p50 %lld ms, p99 %lld ms, max %lld ms\n", ps.count,
                static_cast<long long>(ps.p50), static_cast<long long>(ps.p99),
                static_cast<long long>(ps.max));
  for (const auto& m : p.moves)
    if (m.state != data::MoveState::kPending && m.state != data::MoveState::kCleaned &&
        m.state != data::MoveState::kSwitched)
      std::printf("  shard %d %s -> %s: %s, %lld users, %lld rows\n", m.logical, m.from.c_str(),
                  m.to.c_str(), std::string(data::MoveStateName(m.state)).c_str(),
                  static_cast<long long>(m.users), static_cast<long long>(m.rows));
  return 0;
}

}  // namespace

int RunReshard(const ReshardFlags& flags) {
  topo::Topology t = topo::Topology::Load(flags.topology);
  if (!t.shards.enabled)
    return Usage(flags.topology + " is not sharded (no [shards] table): nothing to reshard");
  if (flags.parallel < 1) return Usage("--parallel must be at least 1");
  const std::string run_dir =
      std::filesystem::absolute(t.runner.run_dir).lexically_normal().string();
  data::EtcdOptions eo = web::ShardMapEtcdOptions(t);
  eo.user = "shardmap";
  eo.password = secrets::Get(run_dir, secrets::kEtcdShardMap);
  data::ReshardEtcd etcd(eo, t.name);
  if (flags.status) return PrintPlanStatus(etcd);

  // The lock first: nothing is read or written before it is ours.
  data::ReshardLockHolder me{Hostname(), static_cast<int64_t>(getpid()),
                             Env::Default().WallMillis(), 0};
  data::ReshardLockHolder holder;
  Status locked = etcd.Lock(me, kLockTtlS, &holder);
  if (!locked.ok() && locked.error().code == "reshard_running" && holder.host == me.host &&
      holder.pid > 0 && kill(static_cast<pid_t>(holder.pid), 0) != 0 && errno == ESRCH) {
    std::fprintf(stderr,
                 "millions reshard: the lock's holder (pid %lld on this host) is gone: its lease "
                 "is revoked\n",
                 static_cast<long long>(holder.pid));
    if (Status st = etcd.Break(holder); st.ok()) locked = etcd.Lock(me, kLockTtlS, &holder);
  }
  if (!locked.ok()) {
    if (locked.error().code == "reshard_running")
      std::fprintf(stderr,
                   "millions reshard: another reshard is running (pid %lld on %s, started %s): "
                   "`millions reshard --status` shows its progress\n",
                   static_cast<long long>(holder.pid), holder.host.c_str(),
                   Ago(Env::Default().WallMillis() - holder.started_ms).c_str());
    else
      std::fprintf(stderr, "millions reshard: taking the lock: %s\n",
                   locked.error().message.c_str());
    return 1;
  }
  struct Unlock {
    data::ReshardEtcd& e;
    ~Unlock() { (void)e.Unlock(); }
  } unlock{etcd};

  data::EtcdShardMapClient maps(eo);
  auto current = maps.Read();
  if (!current.ok()) {
    std::fprintf(stderr, "millions reshard: the shard map (%s): %s (is the topology up?)\n",
                 eo.key.c_str(), current.error().message.c_str());
    return 1;
  }
  auto recorded = etcd.ReadPlan();
  if (!recorded.ok()) {
    std::fprintf(stderr, "millions reshard: the recorded plan: %s\n",
                 recorded.error().message.c_str());
    return 1;
  }
  data::ReshardPlan plan;
  if (*recorded && !(*recorded)->done()) {
    plan = std::move(**recorded);
    std::fprintf(stderr, "millions reshard: resuming the reshard recorded in etcd (%zu moves)%s\n",
                 plan.moves.size(),
                 flags.shards || !flags.add.empty() || !flags.isolate.empty()
                     ? "; run the command again afterwards for a new one"
                     : "");
  } else {
    auto next = NextMap(t, run_dir, current->map, flags);
    if (!next.ok()) return Usage(next.error().message);
    auto made = data::MakeReshardPlan(current->map, *next, Env::Default().WallMillis());
    if (!made.ok()) return Usage(made.error().message);
    if (made->moves.empty()) {
      std::printf("nothing to move: the map already places every logical shard so\n");
      return 0;
    }
    plan = std::move(*made);
    if (Status st = etcd.WritePlan(plan); !st.ok()) {
      std::fprintf(stderr, "millions reshard: writing the plan: %s\n", st.error().message.c_str());
      return 1;
    }
  }
  // Every cluster of the plan must be the topology's.
  std::map<std::string, pg::Options> clusters;
  for (const auto* m : {&plan.from, &plan.to})
    for (const auto& name : m->clusters) {
      const topo::PgClusterEntry* c = FindCluster(t, name);
      if (!c) {
        std::fprintf(stderr, "millions reshard: the plan names cluster %s, which %s lacks\n",
                     name.c_str(), flags.topology.c_str());
        return 1;
      }
      pg::Options o = ClusterWriterPg(t, *c, run_dir, "millions-reshard");
      o.statement_timeout_ms = 300'000;  // a large shard's copy
      o.pool_size = flags.parallel * 2 + 2;
      clusters[name] = o;
    }
  // Targets new to the map get the schema and the logical shard count (up does it too).
  std::set<std::string> targets;
  for (const auto& m : plan.moves) targets.insert(m.to);
  for (const auto& name : targets) {
    auto st = data::PrepareShardCluster(clusters[name], plan.from, name);
    if (!st.ok()) {
      std::fprintf(stderr, "millions reshard: preparing cluster %s: %s\n", name.c_str(),
                   st.error().message.c_str());
      return 1;
    }
  }
  ExecutorOptions xo;
  xo.parallel = flags.parallel;
  xo.grace = std::chrono::milliseconds(flags.grace_ms);
  xo.progress = flags.progress;
  xo.lock_ttl = std::chrono::seconds(kLockTtlS);
  // The web nodes to nudge at each cut-over: the runner's effective topology (with the nodes
  // scaled up at run time) when there is one, else the file's.
  const topo::Topology* web_of = &t;
  std::optional<topo::Topology> effective;
  try {
    if (std::filesystem::exists(run_dir + "/topology.toml")) {
      effective = topo::Topology::Load(run_dir + "/topology.toml");
      web_of = &*effective;
    }
  } catch (const std::exception&) {
    // the file's web nodes, then
  }
  for (const auto& n : web_of->web) xo.web_nodes.push_back(n.listen);
  xo.nudge_token = secret::Derive(eo.password, secret::kShardMapRefresh);
  return RunPlan(std::move(plan), clusters, etcd, maps, xo);
}

}  // namespace millions::ctl
