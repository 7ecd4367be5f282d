// `millions scenario sharding`: how many users move when a database cluster is added, for each
// shard function of data/shard_map.h (modulo, ring: consistent hashing, balanced), computed the
// way bench/shard_move.cc does: synthetic handles on the 1024 logical shards, the logical
// shards on 1..N clusters. Then the live reshard: a topology of three clusters (one Patroni
// member each) whose first map uses two, seeded, and `millions reshard --shards 3` run while
// `millions load` runs through the balancer: shards and rows moved, time, rows/s, the write
// pause per shard and the load's p99 and failures before and during.
#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>

#include "ctl/scenarios.h"
#include "data/shard_map.h"

namespace millions::ctl {

std::vector<ShardStep> ShardMoves(long users, int max_clusters) {
  const int logical = data::kDefaultLogicalShards;
  std::vector<long> per_shard(logical, 0);
  for (long u = 0; u < users; ++u)
    ++per_shard[data::LogicalShardOfHandle("user" + std::to_string(u), logical)];
  std::vector<ShardStep> out;
  for (const char* name : {"modulo", "ring", "balanced"}) {
    auto f = data::MakeShardFunction(name);
    std::vector<std::string> clusters{"pg1"};
    data::ShardMap m = data::NextShardMap(*f, clusters, logical, nullptr);
    for (int n = 2; n <= max_clusters; ++n) {
      clusters.push_back("pg" + std::to_string(n));
      data::ShardMap next = data::NextShardMap(*f, clusters, logical, &m);
      long moved = 0;
      for (int s : data::MovedShards(m, next)) moved += per_shard[s];
      std::vector<long> load(n, 0);
      for (int s = 0; s < logical; ++s) load[next.owner[s]] += per_shard[s];
      double mean = static_cast<double>(users) / n;
      out.push_back({name, n, 100.0 * static_cast<double>(moved) / static_cast<double>(users),
                     static_cast<double>(*std::max_element(load.begin(), load.end())) / mean});
      m = next;
    }
  }
  return out;
}

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Up a sharded topology, seed it, load it, and reshard 2 -> 3 under the load: the second table.
// Returns the summary's sentence.
std::string LiveReshard(ScenarioEnv& env, ScenarioResult& r) {
  const int logical = env.Pick(256, 64);
  const int seed_users = env.Pick(3000, 300);
  const int load_users = env.Pick(20, 8);
  const int before_s = env.Pick(20, 6), during_s = env.Pick(40, 14);
  TopoSpec spec;
  spec.name = "reshard";
  spec.web = 1;
  spec.pg = 3;
  spec.logical_shards = logical;
  spec.initial_shards = 2;
  std::string url = env.Up("reshard", spec);
  const std::string topo = env.topology();
  env.Say("seeding " + std::to_string(seed_users) + " users on 2 of 3 clusters (" +
          std::to_string(logical) + " logical shards)");
  if (env.Millions({"seed", "--users", std::to_string(seed_users), "--follows", "4", "--photos",
                    "1", "--topology", topo},
                   300, "seed.log") != 0)
    throw std::runtime_error("millions seed failed: " + ReadAll(env.dir() + "/seed.log"));
  env.Say("load before the reshard (" + std::to_string(before_s) + " s)");
  LoadResult before = env.Load(url, load_users, before_s, "default");
  env.Say("load during `millions reshard --shards 3` (" + std::to_string(during_s) + " s)");
  pid_t rs = 0;
  LoadResult during = env.Load(url, load_users, during_s, "default", [&](double t) {
    if (rs == 0 && t >= 2)
      rs = env.StartMillions({"reshard", "--shards", "3", "--topology", topo}, "reshard.log");
  });
  if (rs == 0) throw std::runtime_error("the load ended before the reshard started");
  int rc = env.WaitMillions(rs, 600);
  std::string log = ReadAll(env.dir() + "/reshard.log");
  if (rc != 0)
    throw std::runtime_error("millions reshard failed (exit " + std::to_string(rc) +
                             "): " + log.substr(log.size() > 1500 ? log.size() - 1500 : 0));
  std::smatch m;
  static const std::regex kSummary(
      R"(resharded: (\d+) logical shards.*?, (\d+) users, (\d+) rows; this run (\d+) rows in )"
      R"(([\d.]+) s \((\d+) rows/s\); write pause per shard p50 (-?\d+) ms, p99 (-?\d+) ms, )"
      R"(max (-?\d+) ms)");
  if (!std::regex_search(log, m, kSummary))
    throw std::runtime_error("millions reshard printed no summary: " + log);
  const double reshard_s = std::stod(m[5].str());
  r.more_tables.push_back(
      {"live reshard: 2 -> 3 clusters under load (millions reshard --shards 3)",
       {{"logical shards", "shards moved", "users moved", "rows moved", "time (s)", "rows/s",
         "pause p50 (ms)", "pause p99 (ms)", "pause max (ms)", "req p99 before (ms)",
         "req p99 during (ms)", "failed requests"},
        {{std::to_string(logical), m[1].str(), m[2].str(), m[3].str(), m[5].str(), m[6].str(),
          m[7].str(), m[8].str(), m[9].str(), Num(before.p99_ms), Num(during.p99_ms),
          Num(during.errors, 0) + " of " + Num(during.requests, 0)}}}});
  env.Down();
  return "Live, " + m[1].str() + " of " + std::to_string(logical) + " logical shards (" +
         m[3].str() + " rows) moved to the third cluster in " + Num(reshard_s) +
         " s under load; each shard's writes paused p50 " + m[7].str() + " ms, max " + m[9].str() +
         " ms; request p99 " + Num(before.p99_ms) + " ms before, " + Num(during.p99_ms) +
         " ms during; " + Num(during.errors, 0) + " failed requests.";
}

}  // namespace

ScenarioResult RunSharding(ScenarioEnv& env) {
  const long users = env.Pick(1000000, 100000);
  const int max_clusters = 8;
  env.Say("placing " + std::to_string(users) + " users on 1.." + std::to_string(max_clusters) +
          " clusters");
  auto steps = ShardMoves(users, max_clusters);
  ScenarioResult r;
  r.table.columns = {"step",          "ideal moved %",    "modulo moved %",
                     "ring moved %",  "balanced moved %", "modulo max/mean",
                     "ring max/mean", "balanced max/mean"};
  r.plot.title = "Users moved when a cluster is added";
  r.plot.y_label = "users moved (%)";
  r.plot.x_label = "clusters after the step";
  r.plot.series = {{"ideal (1/n)", {}}, {"modulo", {}}, {"ring", {}}, {"balanced", {}}};
  double modulo_sum = 0, ring_sum = 0;
  for (int n = 2; n <= max_clusters; ++n) {
    std::vector<std::string> row{std::to_string(n - 1) + "->" + std::to_string(n), Num(100.0 / n)};
    r.plot.categories.push_back(std::to_string(n));
    r.plot.series[0].values.push_back(100.0 / n);
    std::vector<std::string> balance;
    int k = 1;
    for (const auto& s : steps) {
      if (s.clusters != n) continue;
      row.push_back(Num(s.moved_pct));
      balance.push_back(Num(s.max_over_mean, 3));
      r.plot.series[static_cast<size_t>(k++)].values.push_back(s.moved_pct);
      if (s.policy == "modulo") modulo_sum += s.moved_pct;
      if (s.policy == "ring") ring_sum += s.moved_pct;
    }
    row.insert(row.end(), balance.begin(), balance.end());
    r.table.rows.push_back(row);
  }
  int steps_n = max_clusters - 1;
  r.summary = std::to_string(users) + " users on 1024 logical shards: adding a cluster moves " +
              Num(modulo_sum / steps_n) + "% of users on average with modulo, " +
              Num(ring_sum / steps_n) +
              "% with consistent hashing (ring); the ideal is 1/n of them.";
  r.summary += " " + LiveReshard(env, r);
  r.notes = {
      "The first table is computed from the shard map code (data/shard_map.h), as "
      "bench/shard_move.cc does; no process runs.",
      "The live reshard: three clusters of one Patroni member each, [shards] initial = 2, "
      "`millions seed`, then `millions load` (default mix) through the balancer before, and "
      "during `millions reshard --shards 3` (started 2 s into the load; the during p99 is of "
      "that whole load run, some of it after the reshard). The pause is per logical shard, "
      "freeze to cut-over (docs/sharding.md)."};
  return r;
}

}  // namespace millions::ctl
