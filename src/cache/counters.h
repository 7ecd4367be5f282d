// Counters: small expiring counters shared by every web node, kept beside the cache: the log-in
// and sign-up throttle's failures and blocks (app/throttle.h). Three stores behind one interface:
// - LocalCounters: this process's memory, bounded (the entries nearest their expiry go first
//   when full); `millions single`'s store, and every web node's fallback.
// - RedisCounters: on the cache nodes (L2), each key on its ring owner (INCR, PEXPIRE, PTTL).
//   A cache node that restarts or evicts loses its counters: they are soft state.
// - FallbackCounters: the shared store while it answers, the local one while it does not, so
//   that a cache outage neither lets every attempt through nor refuses everyone: each node then
//   counts what it sees by itself.
// Thread-safety: every method may be called from any thread. RedisCounters and FallbackCounters
// block for at most the cache's command timeout: call them on a BlockingPool.
// Ownership: RedisCounters borrows its L2; FallbackCounters owns both of its stores.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "cache/l2.h"
#include "core/env.h"
#include "core/result.h"

namespace millions::cache {

class Counters {
 public:
  virtual ~Counters() = default;
  // Adds 1 to `key` (0 when absent) and returns the new value. The key expires `ttl` after its
  // first increment (a fixed window) or, when `sliding`, `ttl` after this one.
  virtual Result<int64_t> Increment(const std::string& key, std::chrono::milliseconds ttl,
                                    bool sliding) = 0;
  // The value, 0 when absent or expired.
  virtual Result<int64_t> Value(const std::string& key) = 0;
  // Sets `key` to 1 for `ttl` (a mark, such as "blocked until").
  virtual Status Mark(const std::string& key, std::chrono::milliseconds ttl) = 0;
  // Milliseconds until `key` expires; 0 when absent.
  virtual Result<int64_t> Remaining(const std::string& key) = 0;
  // Moves `key`'s expiry to `ttl` from now (nothing when absent).
  virtual Status Expire(const std::string& key, std::chrono::milliseconds ttl) = 0;
  virtual Status Remove(const std::string& key) = 0;
};

class LocalCounters final : public Counters {
 public:
  LocalCounters(Env& env, size_t max_keys) : env_(env), max_keys_(max_keys) {}
  Result<int64_t> Increment(const std::string& key, std::chrono::milliseconds ttl,
                            bool sliding) override;
  Result<int64_t> Value(const std::string& key) override;
  Status Mark(const std::string& key, std::chrono::milliseconds ttl) override;
  Result<int64_t> Remaining(const std::string& key) override;
  Status Expire(const std::string& key, std::chrono::milliseconds ttl) override;
  Status Remove(const std::string& key) override;
  size_t size() const;

 private:
  using Time = std::chrono::steady_clock::time_point;
  struct Entry {
    int64_t value = 0;
    Time expires;
  };
  // Under mu_: the live entry of `key` (an expired one is erased), or nullptr.
  Entry* Live(const std::string& key);
  void SetExpiry(const std::string& key, Entry& e, Time t);
  void EraseLocked(const std::string& key);
  // Makes room for one more key: expired ones first, then those nearest their expiry.
  void MakeRoom();
  Env& env_;
  const size_t max_keys_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::set<std::pair<Time, std::string>> by_expiry_;
};

class RedisCounters final : public Counters {
 public:
  explicit RedisCounters(L2& l2) : l2_(l2) {}
  Result<int64_t> Increment(const std::string& key, std::chrono::milliseconds ttl,
                            bool sliding) override;
  Result<int64_t> Value(const std::string& key) override;
  Status Mark(const std::string& key, std::chrono::milliseconds ttl) override;
  Result<int64_t> Remaining(const std::string& key) override;
  Status Expire(const std::string& key, std::chrono::milliseconds ttl) override;
  Status Remove(const std::string& key) override;

 private:
  Result<RedisReply> One(const std::string& key, std::vector<std::string> argv);
  L2& l2_;
};

class FallbackCounters final : public Counters {
 public:
  // `on_fallback` runs (any thread) each time the shared store fails and the local one answers.
  FallbackCounters(std::unique_ptr<Counters> shared, std::unique_ptr<Counters> local,
                   std::function<void()> on_fallback = {})
      : shared_(std::move(shared)),
        local_(std::move(local)),
        on_fallback_(std::move(on_fallback)) {}
  Result<int64_t> Increment(const std::string& key, std::chrono::milliseconds ttl,
                            bool sliding) override;
  Result<int64_t> Value(const std::string& key) override;
  Status Mark(const std::string& key, std::chrono::milliseconds ttl) override;
  Result<int64_t> Remaining(const std::string& key) override;
  Status Expire(const std::string& key, std::chrono::milliseconds ttl) override;
  Status Remove(const std::string& key) override;

 private:
  template <class F>
  auto Either(F f) -> decltype(f(std::declval<Counters&>()));
  std::unique_ptr<Counters> shared_, local_;
  std::function<void()> on_fallback_;
};

}  // namespace millions::cache
