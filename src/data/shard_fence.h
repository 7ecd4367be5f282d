// The fence's state on a cluster (docs/sharding.md): `millions up` brings each database cluster
// of a sharded topology to its schema (migrations, as the web nodes run them) and, at first
// start, writes the cluster's `shard_ownership` rows from the shard map: every logical shard the
// map gives the cluster is `owned` there; others are absent, so the cluster's trigger refuses
// their rows (SQLSTATE MS001). Later changes of ownership are the reshard's, never up's: up
// leaves a filled table as it is (a reshard that crashed midway finds its states where it left
// them).
// The error codes the trigger raises, as the store sees them (core/pg.cc names an error
// "sqlstate_" + its code).
// Thread-safety: functions; each opens its own connections and blocks (start-up only).
// Ownership: none kept.
#pragma once

#include <string>
#include <string_view>

#include "core/pg.h"
#include "core/result.h"
#include "data/shard_map.h"

namespace millions::data {

inline constexpr std::string_view kWrongShardCode = "sqlstate_MS001";
inline constexpr std::string_view kShardFrozenCode = "sqlstate_MS002";

// Migrates the cluster behind `options` (the application's role: it owns the schema), sets its
// logical shard count, and fills `shard_ownership` from `map` for `cluster` when it is empty.
// Returns how many rows it wrote (0 when the table was filled already, or when the map does not
// name `cluster`: a cluster added to the topology, which a reshard fills).
Result<int> PrepareShardCluster(const pg::Options& options, const ShardMap& map,
                                const std::string& cluster);

}  // namespace millions::data
