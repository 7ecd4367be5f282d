// ObjectStore: the edge's cached responses. A memory tier bounded by bytes, evicting with the
// topology's policy (cache/eviction_policy.h: lru, lfu, fifo), and an optional disk tier that
// survives a restart. Objects are immutable once stored (a revalidation stores a new one that
// shares the body). Each key holds up to kMaxVariants responses, one per Vary selection.
// Purges by key, by key prefix and by tag (the origin's Surrogate-Key) take effect at once: a
// Lookup that starts after a purge returns never sees a purged object, in memory or on disk.
// Thread-safety: every method may be called from any thread; the memory tier is split into
// shards, each under its own mutex, so lookups on different keys rarely contend. LoadFromDisk
// reads files (blocking): call it off the event loops. Put and the purges never block on the
// disk: files are written and removed by the store's own writer thread.
// Ownership: the store owns its objects; an ObjectPtr keeps one alive after its eviction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "roles/edge/http_cache.h"

namespace millions::edge {

struct Object {
  std::string key;       // CacheKey(...)
  std::string vary_key;  // VaryKey(info.vary, the request that stored it)
  int status = 200;
  // The origin's header lines to replay ("Name: value\r\n" each), without hop-by-hop fields,
  // Age, X-Cache or Set-Cookie (a response with Set-Cookie is not stored).
  std::string headers;
  std::shared_ptr<const std::string> body;
  Stored meta;                    // freshness and validators (http_cache.h)
  std::vector<std::string> tags;  // Surrogate-Key values, for purge by tag
  // What the object counts against the byte bound: key, headers, body and a fixed overhead.
  size_t bytes() const;
};
using ObjectPtr = std::shared_ptr<const Object>;

struct StoreOptions {
  size_t memory_bytes = 64 << 20;
  std::string policy = "lru";  // an eviction policy's name; unknown: Open throws
  // Larger objects are not stored (they stream from the origin every time).
  size_t max_object_bytes = 8 << 20;
  // Disk tier: empty dir, none. Bounded by disk_bytes (oldest written removed first).
  std::string disk_dir;
  size_t disk_bytes = 1ull << 30;
};

struct StoreStats {
  uint64_t memory_objects = 0, memory_bytes = 0;
  uint64_t disk_objects = 0, disk_bytes = 0;
  uint64_t evictions = 0;    // objects evicted from memory for space
  uint64_t disk_errors = 0;  // files that could not be written, read or parsed (skipped)
};

class ObjectStore {
 public:
  static constexpr int kMaxVariants = 8;
  virtual ~ObjectStore() = default;
  // The stored response for `key` whose Vary selection matches this request, from memory;
  // nullptr if none (a hit counts as an access for the eviction policy).
  virtual ObjectPtr Lookup(std::string_view key, const HeaderLookup& request) = 0;
  // The same from the disk tier (blocking); a found object is promoted into memory.
  virtual ObjectPtr LoadFromDisk(std::string_view key, const HeaderLookup& request) = 0;
  // Stores (replacing the variant with the same vary_key), evicting to the bound; an object
  // over max_object_bytes is ignored. Written to disk in the background when there is a tier.
  virtual void Put(ObjectPtr object) = 0;
  // Each returns how many objects it removed (memory and disk counted once per object).
  virtual size_t PurgeKey(std::string_view key) = 0;
  virtual size_t PurgePrefix(std::string_view key_prefix) = 0;
  virtual size_t PurgeTag(std::string_view tag) = 0;
  virtual StoreStats Stats() const = 0;
};

// Throws std::invalid_argument for an unknown policy, std::runtime_error for a disk dir that
// cannot be made or read. With a disk tier, reads its index at once (objects written by an
// earlier run are found again); files it cannot parse are removed and counted.
std::unique_ptr<ObjectStore> OpenObjectStore(const StoreOptions& options);

// The secondary cache key (RFC 9111 §4.1): for each field name in `vary`, in order, the
// request's value with whitespace around commas and at the ends removed ("" when absent). Two
// requests select the same stored response when their keys are equal.
std::string VaryKey(const std::vector<std::string>& vary, const HeaderLookup& request);

// The primary cache key: "GET" (HEAD shares GET's), the host lower-cased without a default
// port, the path as received, and the query's parameters sorted by name then value, each
// re-encoded the same way (so "?b=2&a=1" and "?a=1&b=%32" are one key); an empty query and no
// query are one key. Never contains a header the client chose other than Host.
std::string CacheKey(std::string_view method, std::string_view host, std::string_view path,
                     std::string_view query);

}  // namespace millions::edge
