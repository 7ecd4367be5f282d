// How much data each shard function moves as a deployment grows one cluster at a time, and how
// evenly it spreads users (docs/sharding.md): USERS synthetic handles (default 1000000) placed
// on 1024 logical shards by LogicalShardOfHandle, the logical shards on 1..MAX clusters by
// `modulo`, `ring` and `balanced`. Printed per step: the fraction of users that change cluster
// and the largest cluster's users over the mean. Pure computation: no process, no network.
// Usage: shard_move [USERS] [MAX_CLUSTERS]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/shard_map.h"

using millions::data::ShardMap;

int main(int argc, char** argv) {
  const long users = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  const int max_clusters = argc > 2 ? std::atoi(argv[2]) : 8;
  const int logical = millions::data::kDefaultLogicalShards;
  if (users < 1 || max_clusters < 2 || max_clusters > 256) {
    std::fprintf(stderr, "usage: shard_move [USERS>0] [MAX_CLUSTERS 2..256]\n");
    return 2;
  }
  std::vector<long> per_shard(logical, 0);
  for (long u = 0; u < users; ++u)
    ++per_shard[millions::data::LogicalShardOfHandle("user" + std::to_string(u), logical)];

  std::printf("%ld users on %d logical shards; each step adds one cluster\n", users, logical);
  std::printf("%-9s %-10s %14s %14s %12s\n", "policy", "clusters", "users moved", "ideal moved",
              "max/mean");
  for (const char* name : {"modulo", "ring", "balanced"}) {
    auto f = millions::data::MakeShardFunction(name);
    std::vector<std::string> clusters{"pg1"};
    ShardMap m = millions::data::NextShardMap(*f, clusters, logical, nullptr);
    for (int n = 2; n <= max_clusters; ++n) {
      clusters.push_back("pg" + std::to_string(n));
      ShardMap next = millions::data::NextShardMap(*f, clusters, logical, &m);
      long moved = 0;
      for (int s : millions::data::MovedShards(m, next)) moved += per_shard[s];
      std::vector<long> load(n, 0);
      for (int s = 0; s < logical; ++s) load[next.owner[s]] += per_shard[s];
      double mean = double(users) / n;
      std::printf("%-9s %-10s %13.1f%% %13.1f%% %12.3f\n", name,
                  (std::to_string(n - 1) + "->" + std::to_string(n)).c_str(),
                  100.0 * double(moved) / double(users), 100.0 / n,
                  double(*std::max_element(load.begin(), load.end())) / mean);
      m = next;
    }
  }
  return 0;
}
