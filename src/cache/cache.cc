#include "cache/cache.h"

#include <functional>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "cache/eviction_policy.h"

namespace millions::cache {

namespace {

using Clock = std::chrono::steady_clock;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class LocalCache : public Cache {
 public:
  LocalCache(const CacheOptions& o, Env& env, std::unique_ptr<EvictionPolicy> policy)
      : opt_(o), env_(env), policy_(std::move(policy)) {}

  std::optional<std::string> Get(std::string_view key) override {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) {
      ++stats_.misses;
      return std::nullopt;
    }
    if (Expired(it->second)) {
      ++stats_.expirations;
      ++stats_.misses;
      EraseIt(it);
      return std::nullopt;
    }
    ++stats_.hits;
    policy_->OnAccess(&it->first);
    return it->second.value;
  }

  void Put(std::string key, std::string value,
           std::optional<std::chrono::milliseconds> ttl) override {
    size_t size = key.size() + value.size() + kEntryOverhead;
    std::chrono::milliseconds t = ttl.value_or(opt_.default_ttl);
    Clock::time_point expires = t.count() > 0 ? env_.Now() + t : Clock::time_point::max();
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    // Replaced values start afresh; and an oversized replacement must not leave the stale value.
    if (it != map_.end()) EraseIt(it);
    if (size > opt_.capacity_bytes) return;
    while (stats_.bytes + size > opt_.capacity_bytes) {
      auto victim = map_.find(*policy_->Victim());
      ++stats_.evictions;
      EraseIt(victim);
    }
    auto [pos, _] = map_.emplace(std::move(key), Entry{std::move(value), expires, size});
    policy_->OnInsert(&pos->first);
    stats_.bytes += size;
    stats_.entries = map_.size();
  }

  bool Erase(std::string_view key) override {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    EraseIt(it);
    return true;
  }

  CacheStats Stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  struct Entry {
    std::string value;
    Clock::time_point expires;
    size_t size;
  };
  using Map = std::unordered_map<std::string, Entry, StringHash, std::equal_to<>>;

  bool Expired(const Entry& e) const { return env_.Now() >= e.expires; }

  void EraseIt(Map::iterator it) {
    policy_->OnErase(&it->first);
    stats_.bytes -= it->second.size;
    map_.erase(it);
    stats_.entries = map_.size();
  }

  CacheOptions opt_;
  Env& env_;
  mutable std::mutex mu_;
  std::unique_ptr<EvictionPolicy> policy_;
  Map map_;
  CacheStats stats_;
};

}  // namespace

std::unique_ptr<Cache> Cache::Create(const CacheOptions& options, Env& env) {
  auto policy = MakePolicy(options.policy);
  if (!policy)
    throw std::invalid_argument("unknown cache policy '" + options.policy +
                                "' (choose lru, lfu or fifo)");
  return std::make_unique<LocalCache>(options, env, std::move(policy));
}

}  // namespace millions::cache
