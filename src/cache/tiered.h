// Tiered: the two-level read-through cache the service reads through. L1 is this node's memory
// (cache.h); L2, when the topology has cache nodes, is the shared Redis tier (l2.h).
//
// A read (Get) looks in L1, then L2, then calls the loader (the database) and fills L2 and, for
// hot keys, L1. Concurrent misses of one key in this node load it once (single flight); across
// nodes, L2's lease makes one node load while the others wait and read its fill. A value near
// its expiry is refreshed early by one reader, with probability rising as expiry nears
// (XFetch: "Optimal Probabilistic Cache Stampede Prevention", Vattani et al.), so a hot key
// never expires under load. TTLs get jitter so that keys filled together do not expire together.
//
// Writes call Invalidate after their database commit: it deletes (never sets) the keys in L1
// and L2 and broadcasts them so every node drops them from its L1; a lost broadcast is bounded
// by the short L1 TTL (`l1_ttl`). A load in flight when its key is invalidated does not fill L1
// (and cannot fill L2: the delete removed its lease).
//
// Without L2 (stage 1, `millions single`) every key is kept in L1 with its kind's TTL.
//
// Thread-safety: every method may be called from any thread. Get may block (L2 round trips,
// lease waits, the loader): call it on a BlockingPool. Peek never blocks.
// Ownership: owns L1 and L2; borrows the Env and the metrics registry, which outlive it.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "cache/l2.h"
#include "core/env.h"
#include "core/metrics.h"
#include "core/result.h"

namespace millions::cache {

enum class Kind { kUser, kPhoto, kSession, kPhotos, kFollowers, kFollowing, kFeed };
inline constexpr size_t kKinds = 7;
const char* KindName(Kind k);

// A cache key and the kind of entry under it (for metrics by kind).
struct CacheKey {
  Kind kind;
  std::string key;
};

struct TieredOptions {
  CacheOptions l1;
  // TTL per kind in L2 (and in L1 when there is no L2), indexed by Kind.
  std::array<std::chrono::milliseconds, kKinds> ttl{
      std::chrono::minutes(5),  std::chrono::minutes(5), std::chrono::minutes(1),
      std::chrono::seconds(30), std::chrono::minutes(5), std::chrono::minutes(5),
      std::chrono::seconds(10)};
  std::chrono::milliseconds l1_ttl{2000};  // with L2: how stale L1 may be when a broadcast is lost
  int hot_key_reads_per_s = 20;            // with L2: keys read this often are kept in L1; 0: all
  double ttl_jitter = 0.1;                 // TTLs are spread by ± this fraction
  double early_expiry_beta = 1.0;          // XFetch's beta; 0 turns early refresh off
  std::chrono::milliseconds lease_wait{2000};  // longest wait for another node's fill
  std::chrono::milliseconds lease_poll{5};  // first re-read interval while waiting (doubles to 40)
  // Seams for tests: how to wait, and uniform randoms in (0, 1].
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<double()> random;
};

class Tiered {
 public:
  // l2 may be null (L1 only).
  Tiered(TieredOptions options, std::unique_ptr<L2> l2, Env& env, metrics::Registry& metrics);
  ~Tiered();

  // Loads the value from the database; `primary`: a write to this key was seen moments ago, so
  // a replica may not have it yet.
  using Loader = std::function<Result<std::string>(bool primary)>;
  // The cached value, or the loader's (errors are returned, never cached).
  Result<std::string> Get(Kind kind, const std::string& key, const Loader& load);
  // L1 only; counts hits (a miss is counted by the Get that follows).
  std::optional<std::string> Peek(Kind kind, std::string_view key);
  // After a commit: delete everywhere and broadcast.
  void Invalidate(const std::vector<CacheKey>& keys);
  // Drop from this node's L1 only.
  void DropLocal(const std::vector<CacheKey>& keys);
  // A broadcast from another node (or this one), as Invalidate sent it: DropLocal, counted.
  void OnBroadcast(const std::vector<std::string>& lines);

  bool has_l2() const { return l2_ != nullptr; }
  // The L2 (nullptr without cache nodes), for state kept beside the cache (counters.h).
  L2* l2() const { return l2_.get(); }
  CacheStats L1Stats() const;
  std::vector<L2NodeStats> L2Stats() const;
  // The values read at scrape time (L1's size and evictions, each cache node's state), for a
  // metrics::Registry callback collector; the request counters are registered series.
  void CollectMetrics(metrics::Families* out) const;
  // Sets the L2 after construction (its broadcast callback needs this object).
  void AttachL2(std::unique_ptr<L2> l2);
  // Another DC's cache nodes (docs/datacentres.md): Invalidate deletes and broadcasts there as
  // in this node's L2 (never read or filled here). A remote node that was unreachable is
  // flushed when it is reached again (RedisL2), so a missed delete serves nothing stale. Call
  // before serving.
  void AttachRemote(std::unique_ptr<L2> remote) { remotes_.push_back(std::move(remote)); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<L2> l2_;
  std::vector<std::unique_ptr<L2>> remotes_;
};

}  // namespace millions::cache
