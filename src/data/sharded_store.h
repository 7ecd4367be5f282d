// The sharded Store (docs/sharding.md): one Store per database cluster, each call routed to the
// cluster that holds its key's logical shard under the current shard map. Keys: a user id, or a
// photo or job id (the shard bits of ids.h, modulo the map's logical shard count); a handle (its
// hash, as at sign-up); a session token hash, an idempotency scope and a blob key (their hash:
// they move with the logical shard they hash to). A follow edge is written on the follower's
// cluster and copied to the followee's, so each side's lists and counts are answered by one
// cluster; the feed asks every cluster once, in parallel (each holds the edges towards its own
// users, hence exactly their photos) and merges by id, newest first.
// The fence (docs/sharding.md): a cluster refuses a row whose logical shard it does not own
// (wrong_shard, SQLSTATE MS001: this node's map is stale) or that is being moved (shard_frozen,
// MS002). On wrong_shard the store re-reads the map (`refresh`) and repeats the call once, now
// routed by the newer map; on shard_frozen it waits with back-off (5 ms doubling to 20 ms) up
// to `frozen_wait` and repeats: a write during a cut-over waits, it does not fail. Every call is
// safe to repeat after either (the trigger aborts the statement; multi-cluster writes are
// idempotent upserts).
// Errors: as the clusters'; 503 `unknown_cluster` when the map names a cluster this node has no
// store for (a map newer than the node's topology); 503 `wrong_shard` or `shard_frozen` when the
// retries above did not help.
// Thread-safety: any thread, as the cluster stores; `map` is called on every routed call and must
// be cheap and thread-safe (an atomic load of an immutable snapshot).
// Ownership: owns the cluster stores; the map source is shared.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "data/shard_map.h"
#include "data/store.h"

namespace millions::data {

using ShardMapSource = std::function<std::shared_ptr<const ShardMap>()>;

struct ShardedStoreOptions {
  ShardMapSource map;
  std::function<void()> refresh;  // wrong_shard: read the map again now (may be empty)
  std::chrono::milliseconds frozen_wait{2000};
  // The back-off's sleep (a seam for tests); empty: std::this_thread::sleep_for.
  std::function<void(std::chrono::milliseconds)> sleep;
};

// `clusters` by the names the map uses. The map's logical shard count must not change while the
// store runs (it is fixed for a deployment's life).
std::unique_ptr<Store> MakeShardedStore(ShardedStoreOptions options,
                                        std::map<std::string, std::unique_ptr<Store>> clusters);
std::unique_ptr<Store> MakeShardedStore(ShardMapSource map,
                                        std::map<std::string, std::unique_ptr<Store>> clusters);

}  // namespace millions::data
