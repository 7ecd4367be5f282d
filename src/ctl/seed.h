// `millions seed`: fills a running topology's PostgreSQL clusters with synthetic users, follow
// edges and photos (data/seed_gen.h, data/seed_writer.h) by COPY, one thread per cluster, with
// a progress line (users, rows, rate, ETA). Every seeded user's password is the one printed at
// the end (one argon2id hash for all: hashing a million passwords would take hours). Ctrl-C stops
// after the current batch; running the same command again continues, skipping rows present.
// Thread-safety: run from main. Ownership: values.
#pragma once

#include <cstdint>
#include <string>

namespace millions::ctl {

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
