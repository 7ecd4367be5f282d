// `millions scenario sharding`: how many users move when a database cluster is added, for each
// shard function of data/shard_map.h (modulo, ring: consistent hashing, balanced), computed the
// way bench/shard_move.cc does: synthetic handles on the 1024 logical shards, the logical
// shards on 1..N clusters. Pure computation; the live reshard (and its write pause) is not
// built yet, and the output says so.
#include <algorithm>
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
  r.notes = {
      "Computed from the shard map code (data/shard_map.h), as bench/shard_move.cc does; no "
      "process runs.",
      "Not built yet: the live reshard (`millions reshard`), so its write pause cannot be "
      "measured here."};
  return r;
}

}  // namespace millions::ctl
