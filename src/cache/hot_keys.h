// HotKeys: which keys this node reads often. A key read at least `threshold` times within one
// second (this second or the last) is hot. With an L2 tier, only hot keys are kept in L1: the few
// keys that take most reads are served from every node's memory, the long tail from L2.
// Memory is bounded: at most `max_tracked` keys are counted per window; keys beyond it are
// not counted until the window turns (a key that hot is counted early in the next one).
// Thread-safety: every method may be called from any thread (16 independently locked shards).
// Ownership: owns copies of the counted keys; borrows the Env, which must outlive it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/env.h"

namespace millions::cache {

class HotKeys {
 public:
  // threshold 0: every key is hot.
  HotKeys(Env& env, int threshold_per_s, size_t max_tracked = 65536);
  // Counts one read of `key`; true when the key is hot.
  bool Touch(std::string_view key);
  // Whether `key` is hot, without counting a read.
  bool IsHot(std::string_view key);
  int threshold() const { return threshold_; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Counts {
    uint32_t now = 0;   // reads this window
    uint32_t last = 0;  // reads in the window before
  };
  struct Shard {
    std::mutex mu;
    int64_t window = 0;
    std::unordered_map<std::string, Counts, Hash, std::equal_to<>> counts;
  };
  bool Count(std::string_view key, uint32_t add);
  Env& env_;
  int threshold_;
  size_t max_per_shard_;
  std::array<Shard, 16> shards_;
};

}  // namespace millions::cache
