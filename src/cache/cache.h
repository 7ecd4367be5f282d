// Cache: the in-process (L1) cache: string keys to string values, bounded by bytes, with a TTL
// and an eviction policy chosen by name ("lru", "lfu", "fifo"; one file each in policies/).
// Thread-safety: every method may be called from any thread (one mutex; critical sections are
// a hash lookup, a value copy and list splices). Ownership: the cache owns copies of keys and
// values; Get returns a copy, so no reference outlives the lock. The Env must outlive the cache.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/env.h"

namespace millions::cache {

struct CacheOptions {
  std::string policy = "lru";                    // "lru" | "lfu" | "fifo"
  size_t capacity_bytes = 64 << 20;              // keys + values + kEntryOverhead per entry
  std::chrono::milliseconds default_ttl{60000};  // 0: no expiry (likewise a Put's ttl)
};

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint64_t expirations = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

// Bytes charged per entry beyond its key and value: the hash node and the policy's bookkeeping.
inline constexpr size_t kEntryOverhead = 96;

class Cache {
 public:
  virtual ~Cache() = default;
  // Throws std::invalid_argument naming the policy when it is unknown (start-up only).
  static std::unique_ptr<Cache> Create(const CacheOptions& options, Env& env);
  // An expired entry is a miss (and counts as an expiration).
  virtual std::optional<std::string> Get(std::string_view key) = 0;
  // Stores or replaces; evicts by policy until the bound holds. An entry larger than the whole
  // capacity is not stored.
  virtual void Put(std::string key, std::string value,
                   std::optional<std::chrono::milliseconds> ttl = std::nullopt) = 0;
  virtual bool Erase(std::string_view key) = 0;
  virtual CacheStats Stats() const = 0;
};

}  // namespace millions::cache
