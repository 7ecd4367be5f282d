// Tallies: distinct counts and plain counts kept beside the cache and shared by every web node:
// the business metrics' per-day structures (app/business.h: who was active on a day, who signed
// up on it, how many uploads it had). Two stores behind one interface:
// - RedisTallies: on the cache nodes (L2), each key on its ring owner. Distinct counts are Redis
//   HyperLogLogs (PFADD, PFCOUNT): 12 KiB at most per key whatever the number of members, with a
//   standard error of 0.81% (small sets, in Redis' sparse encoding, come out exact or nearly).
//   Counts are INCRBY. Every write sets the key's expiry again (PEXPIRE). Soft state: a cache
//   node that restarts or is flushed loses its keys.
// - LocalTallies: this process's memory, exact sets, bounded in members; `millions single`'s.
// Thread-safety: every method may be called from any thread. RedisTallies blocks for at most the
// cache's command timeout per key: call it off the event loop. Ownership: RedisTallies borrows
// its L2.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "cache/l2.h"
#include "core/env.h"
#include "core/result.h"

namespace millions::cache {

class Tallies {
 public:
  virtual ~Tallies() = default;
  // Adds `members` to the distinct set `key`, which expires `ttl` from now.
  virtual Status AddMembers(const std::string& key, const std::vector<int64_t>& members,
                            std::chrono::milliseconds ttl) = 0;
  // Adds `n` to the count `key`, which expires `ttl` from now.
  virtual Status AddCount(const std::string& key, int64_t n, std::chrono::milliseconds ttl) = 0;
  // How many distinct members `key` has (0 when absent); an estimate on Redis.
  virtual Result<int64_t> Distinct(const std::string& key) = 0;
  // The count `key` (0 when absent).
  virtual Result<int64_t> Count(const std::string& key) = 0;
};

class LocalTallies final : public Tallies {
 public:
  // At most `max_members` members over all sets: past it, new members are not kept (the
  // distinct counts then stop growing). 8 bytes and a hash node each: 1M is about 40 MB.
  LocalTallies(Env& env, size_t max_members) : env_(env), max_members_(max_members) {}
  Status AddMembers(const std::string& key, const std::vector<int64_t>& members,
                    std::chrono::milliseconds ttl) override;
  Status AddCount(const std::string& key, int64_t n, std::chrono::milliseconds ttl) override;
  Result<int64_t> Distinct(const std::string& key) override;
  Result<int64_t> Count(const std::string& key) override;
  size_t keys() const;

 private:
  using Time = std::chrono::steady_clock::time_point;
  struct Entry {
    std::unordered_set<int64_t> members;
    int64_t count = 0;
    Time expires;
  };
  // Under mu_: `key`'s live entry, or nullptr (expired entries of every key are dropped first).
  Entry* Live(const std::string& key);
  void DropExpired();
  Env& env_;
  const size_t max_members_;
  mutable std::mutex mu_;
  size_t members_ = 0;
  std::map<std::string, Entry, std::less<>> entries_;
};

class RedisTallies final : public Tallies {
 public:
  explicit RedisTallies(L2& l2) : l2_(l2) {}
  Status AddMembers(const std::string& key, const std::vector<int64_t>& members,
                    std::chrono::milliseconds ttl) override;
  Status AddCount(const std::string& key, int64_t n, std::chrono::milliseconds ttl) override;
  Result<int64_t> Distinct(const std::string& key) override;
  Result<int64_t> Count(const std::string& key) override;

 private:
  L2& l2_;
};

}  // namespace millions::cache
