#include "data/ids.h"

#include <charconv>
#include <thread>

namespace millions::data {

int64_t IdGenerator::Next(int shard) {
  std::lock_guard lock(mu_);
  int64_t ms = env_.WallMillis() - kIdEpochMs;
  // A clock that steps back must not repeat IDs: keep using the last millisecond.
  if (ms < last_ms_) ms = last_ms_;
  if (ms == last_ms_) {
    if (++seq_ >= (1 << kSeqBits)) {
      // 1024 IDs in one millisecond: borrow the next millisecond.
      ++ms;
      seq_ = 0;
    }
  } else {
    seq_ = 0;
  }
  last_ms_ = ms;
  return (ms << (kShardBits + kSeqBits)) |
         (static_cast<int64_t>(shard & ((1 << kShardBits) - 1)) << kSeqBits) | seq_;
}

std::optional<int64_t> ParseId(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v <= 0) return std::nullopt;
  return v;
}

}  // namespace millions::data
