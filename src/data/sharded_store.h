// The sharded Store (docs/sharding.md): one Store per database cluster, each call routed to the
// cluster that holds its key's logical shard under the current shard map. Keys: a user id, or a
// photo or job id (the shard bits of ids.h, modulo the map's logical shard count); a handle (its
// hash, as at sign-up); a session token hash, an idempotency scope and a blob key (their hash:
// they move with the logical shard they hash to). A follow edge is written on the follower's
// cluster and copied to the followee's, so each side's lists and counts are answered by one
// cluster; the feed asks every cluster once (each holds the edges towards its own users, hence
// exactly their photos) and merges by id, newest first.
// Errors: as the clusters'; 503 `unknown_cluster` when the map names a cluster this node has no
// store for (a map newer than the node's topology).
// Thread-safety: any thread, as the cluster stores; `map` is called on every routed call and must
// be cheap and thread-safe (an atomic load of an immutable snapshot).
// Ownership: owns the cluster stores; the map source is shared.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "data/shard_map.h"
#include "data/store.h"

namespace millions::data {

using ShardMapSource = std::function<std::shared_ptr<const ShardMap>()>;

// `clusters` by the names the map uses. The map's logical shard count must not change while the
// store runs (it is fixed for a deployment's life).
std::unique_ptr<Store> MakeShardedStore(ShardMapSource map,
                                        std::map<std::string, std::unique_ptr<Store>> clusters);

}  // namespace millions::data
