// SeedGenerator: the synthetic users, follow edges and photos of `millions seed` (issue 15:
// data at the scale of the story), made deterministically from a seed so that a run can be
// repeated and each user's rows made independently of the others (any range of users, in any
// order, on any thread: the bulk writer streams them per cluster without holding them).
// - Users `prefix0 .. prefixN-1`, signed up over the last `days` days in index order; each ID
//   names the user's logical shard (LogicalShardOfHandle) as a real sign-up's does.
// - Follow edges: on average `follows_per_user` per user, followees drawn with a probability
//   that falls as 1/rank (a log-uniform rank), so a few users gather most followers, as on a
//   real service; no self-follow, no duplicate edge.
// - Photos: on average `photos_per_user` per user (between 0 and twice that), all pointing at
//   one shared media blob, IDs on the owner's shard.
// User IDs are unique (time and sequence from the index); two photos collide only if they share
// a logical shard, a millisecond and a sequence (about 0.02 expected among 10 million photos
// over 30 days). The writer inserts with ON CONFLICT DO NOTHING and reports what it skipped.
// Thread-safety: const methods only; share freely. Ownership: values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace millions::data {

struct SeedOptions {
  int64_t users = 0;
  double follows_per_user = 0;
  double photos_per_user = 0;
  uint64_t seed = 1;
  int64_t now_ms = 0;  // wall clock: sign-ups spread over the `days` before it
  int days = 30;
  std::string prefix = "seed";  // handles are prefix + index
  int logical_shards = 1024;
};

struct SeedUser {
  int64_t index = 0;
  int64_t id = 0;
  int logical = 0;
  std::string handle;
  int64_t created_ms = 0;
};

struct SeedPhoto {
  int64_t id = 0;
  int64_t owner_index = 0;
  int64_t created_ms = 0;
};

class SeedGenerator {
 public:
  explicit SeedGenerator(SeedOptions options);
  const SeedOptions& options() const { return opt_; }
  SeedUser User(int64_t index) const;
  // The followees (user indexes) of user `index`, without duplicates or itself.
  std::vector<int64_t> FolloweesOf(int64_t index) const;
  std::vector<SeedPhoto> PhotosOf(int64_t index) const;

 private:
  SeedOptions opt_;
  int64_t span_ms_;
};

}  // namespace millions::data
