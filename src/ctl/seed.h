// `millions seed`: fills a running topology's PostgreSQL clusters with synthetic users, follow
// edges and photos (data/seed_gen.h, data/seed_writer.h) by COPY, one thread per cluster, with
// a progress line (users, rows, rate, ETA). Every seeded user's password is the one printed at
// the end (one argon2id hash for all: hashing a million passwords would take hours). Ctrl-C stops
// after the current batch; running the same command again continues, skipping rows present.
// Thread-safety: run from main. Ownership: values.
#pragma once

#include <cstdint>
#include <string>

#include "core/pg.h"
#include "core/topology.h"

namespace millions::ctl {

// libpq options for a cluster's writable member (every member listed, read-write asked for), as
// the application's role: for the commands that write a running topology's data (seed, reshard).
pg::Options ClusterWriterPg(const topo::Topology& t, const topo::PgClusterEntry& c,
                            const std::string& run_dir, const std::string& application_name);

struct SeedFlags {
  std::string topology = "topologies/local.toml";
  int64_t users = 0;
  double follows = 10;  // per user, on average
  double photos = 1;    // per user, on average
  uint64_t seed = 1;
  std::string prefix = "seed";
  int64_t batch = 20'000;
};

// 0 when every cluster took its rows; 1 on a database error or an interrupted load; 2 when the
// topology has no PostgreSQL to fill.
int RunSeed(const SeedFlags& flags);

}  // namespace millions::ctl
