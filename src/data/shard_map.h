// Sharding by user (docs/sharding.md): every user belongs to one of `logical` logical shards for
// life, chosen at sign-up from the handle (so log-in by handle finds it without asking every
// shard) and written into the user's ID and into the IDs of the user's photos and jobs (ids.h),
// so any of them is found by its ID alone. A ShardMap says which database cluster holds each
// logical shard; resharding moves whole logical shards between clusters and publishes a new map
// version. Which cluster gets which logical shard is a policy, a ShardFunction (one file each in
// shard/, chosen by name in the topology): `modulo`, `ring` (consistent hashing with virtual
// nodes) or `balanced` (fewest moves from the previous map with equal counts per cluster).
// Thread-safety: ShardMap is immutable once built (share it as shared_ptr<const ShardMap>);
// ShardFunctions are stateless. Ownership: plain values.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace millions::data {

// The default count of logical shards: enough to spread over a few hundred clusters, few enough
// that a map is a small document (IDs hold up to 2^13 = 8192).
inline constexpr int kDefaultLogicalShards = 1024;

// The logical shard of a new user with this handle. Stable for ever: the result is stored in IDs.
int LogicalShardOfHandle(std::string_view handle, int logical_shards);

struct ShardMap {
  int64_t version = 0;
  std::vector<std::string> clusters;  // the clusters' names, in the topology's order
  std::vector<uint16_t> owner;        // logical shard -> index into clusters
  int logical() const { return static_cast<int>(owner.size()); }
  const std::string& ClusterOf(int logical_shard) const { return clusters[owner[logical_shard]]; }
  // The logical shards each cluster holds, by cluster index.
  std::vector<int> Counts() const;
};

class ShardFunction {
 public:
  virtual ~ShardFunction() = default;
  virtual std::string_view name() const = 0;
  // The owner of each of `logical` logical shards among `clusters` (at least one). `previous`
  // is the map in force (nullptr at creation): a policy may keep shards where they are.
  virtual std::vector<uint16_t> Assign(const std::vector<std::string>& clusters, int logical,
                                       const ShardMap* previous) const = 0;
};

std::unique_ptr<ShardFunction> MakeModuloShardFunction();
std::unique_ptr<ShardFunction> MakeRingShardFunction(int points_per_cluster = 160);
std::unique_ptr<ShardFunction> MakeBalancedShardFunction();
// nullptr for an unknown name.
std::unique_ptr<ShardFunction> MakeShardFunction(std::string_view name);

// The next map: `clusters` assigned by `f`, version previous.version + 1 (1 without previous).
ShardMap NextShardMap(const ShardFunction& f, const std::vector<std::string>& clusters, int logical,
                      const ShardMap* previous);

// Logical shards whose cluster differs between two maps (compared by cluster name).
std::vector<int> MovedShards(const ShardMap& from, const ShardMap& to);

// The map as JSON for etcd and `reshard --status`, and back. Parse checks every field: a map
// that names a cluster index out of range, or has no clusters, is an error, never a guess.
std::string ShardMapToJson(const ShardMap& map);
Result<ShardMap> ShardMapFromJson(std::string_view json);

}  // namespace millions::data
