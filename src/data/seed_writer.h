// SeedWriter: writes a SeedGenerator's users, follow edges and photos onto one PostgreSQL
// cluster with COPY (issue 15: `millions seed` loads a million users in minutes, where the API
// would take hours). A cluster gets the rows the shard map puts on it: the users of its logical
// shards, their photos, and every follow edge with either end on it (edges are stored on both
// users' clusters, docs/sharding.md). Batches of users go in one transaction each: COPY into a
// temporary table, then INSERT ... ON CONFLICT DO NOTHING into the real one, so a second run, or
// a resumed one, skips what is there and reports it rather than failing.
// Thread-safety: one writer per connection; writers for different clusters may run in parallel.
// Ownership: borrows the generator, the map and the connection.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/pg.h"
#include "core/result.h"
#include "data/seed_gen.h"
#include "data/shard_map.h"

namespace millions::data {

struct SeedMedia {  // the one image every seeded photo shows
  std::string key, content_type, bytes;
  int width = 0, height = 0;
};

struct SeedCounts {
  int64_t users_done = 0;                      // generator users looked at (of options().users)
  int64_t users = 0, follows = 0, photos = 0;  // rows inserted here
  int64_t skipped = 0;                         // rows already present
};

struct SeedWriteOptions {
  std::string password_hash;  // every seeded user's (one argon2id hash: see `millions seed`)
  SeedMedia media;
  int64_t batch_users = 20'000;
  // After each batch, with the counts so far; false stops the load (Ctrl-C).
  std::function<bool(const SeedCounts&)> progress;
};

// Writes every row of `gen` that `map` puts on `cluster`, over `conn` (the cluster's primary).
Result<SeedCounts> WriteSeed(const SeedGenerator& gen, const ShardMap& map,
                             const std::string& cluster, pg::Conn& conn,
                             const SeedWriteOptions& options);

}  // namespace millions::data
