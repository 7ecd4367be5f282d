#include "cache/hot_keys.h"

namespace millions::cache {

HotKeys::HotKeys(Env& env, int threshold_per_s, size_t max_tracked)
    : env_(env), threshold_(threshold_per_s), max_per_shard_(max_tracked / 16 + 1) {}

bool HotKeys::Touch(std::string_view key) { return Count(key, 1); }

bool HotKeys::IsHot(std::string_view key) { return Count(key, 0); }

bool HotKeys::Count(std::string_view key, uint32_t add) {
  if (threshold_ <= 0) return true;
  int64_t window =
      std::chrono::duration_cast<std::chrono::seconds>(env_.Now().time_since_epoch()).count();
  Shard& s = shards_[Hash{}(key) % shards_.size()];
  std::lock_guard lock(s.mu);
  if (window != s.window) {
    // Turn the window: keep only keys read last window, with that count as `last`.
    bool adjacent = window == s.window + 1;
    for (auto it = s.counts.begin(); it != s.counts.end();) {
      if (adjacent && it->second.now > 0) {
        it->second.last = it->second.now;
        it->second.now = 0;
        ++it;
      } else {
        it = s.counts.erase(it);
      }
    }
    s.window = window;
  }
  auto it = s.counts.find(key);
  if (it == s.counts.end()) {
    if (add == 0 || s.counts.size() >= max_per_shard_) return false;
    it = s.counts.emplace(std::string(key), Counts{}).first;
  }
  it->second.now += add;
  uint32_t t = static_cast<uint32_t>(threshold_);
  return it->second.now >= t || it->second.last >= t;
}

}  // namespace millions::cache
