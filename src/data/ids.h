// 64-bit IDs that sort by time and name their shard, as Instagram's do:
//   41 bits of milliseconds since 2024-01-01 | 13 bits of shard | 10 bits of sequence.
// The shard is the owner's logical shard (shard_map.h): a user's from the handle, a photo's and
// a job's their owner's, so any of them is routed by its ID alone. Who draws the sequence keeps
// IDs unique: PostgreSQL draws it from one sequence per cluster (millions_next_id, schema.cc), so
// every node writing to a cluster gets distinct IDs; the embedded store's one process uses an
// IdGenerator. Store::NewId hides which.
// Thread-safety: IdGenerator::Next may be called from any thread. Ownership: borrows the Env.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/env.h"

namespace millions::data {

inline constexpr int64_t kIdEpochMs = 1'704'067'200'000;  // 2024-01-01T00:00:00Z
inline constexpr int kShardBits = 13;
inline constexpr int kSeqBits = 10;

class IdGenerator {
 public:
  IdGenerator(Env& env, int shard) : env_(env), shard_(shard) {}
  int64_t Next() { return Next(shard_); }
  // An ID naming `shard` (0..8191); unique among all this generator makes, whatever the shard.
  int64_t Next(int shard);

 private:
  Env& env_;
  int shard_;
  std::mutex mu_;
  int64_t last_ms_ = 0;
  int64_t seq_ = 0;
};

inline int ShardOf(int64_t id) {
  return static_cast<int>((id >> kSeqBits) & ((1 << kShardBits) - 1));
}
inline int64_t MillisOf(int64_t id) { return (id >> (kShardBits + kSeqBits)) + kIdEpochMs; }

// Parses a decimal ID as the API writes it; nullopt for anything but 1..2^63-1.
std::optional<int64_t> ParseId(std::string_view text);

}  // namespace millions::data
