// ObjectStore: the edge's cached responses. A memory tier bounded by bytes, evicting with the
// topology's policy (cache/eviction_policy.h: lru, lfu, fifo), and an optional disk tier that
// survives a restart. Objects are immutable once stored (a revalidation stores a new one that
// shares the body: Put it with that same body pointer, and the disk tier writes only its new
// head beside the file that holds the body). Each key holds up to kMaxVariants responses, one
// per Vary selection.
// Purges by key, by key prefix and by tag (the origin's Surrogate-Key) take effect at once: a
// Lookup or LoadFromDisk that starts after a purge returns never sees a purged object, in memory
// or on disk, even while its file still waits for the writer thread to remove it.
// What a purge guarantees against a racing Put: an object whose Put returned before the purge
// started is gone (from memory, from disk and from the writer's queue); an object Put after the
// purge returned is kept; a Put that overlaps the purge may survive it, in either tier. (A fetch
// that began before a purge and is Put after it is kept: the server decides whether to Put.)
// Thread-safety: every method may be called from any thread; the memory tier is split into
// shards, each under its own mutex, so lookups on different keys rarely contend. LoadFromDisk
// reads files (blocking): call it off the event loops. Put and the purges never block on the
// disk: files are written and removed by the store's own writer thread. A Lookup calls the
// request's HeaderLookup under a shard's mutex: it must not call back into the store.
// Ownership: the store owns its objects; an ObjectPtr keeps one alive after its eviction.
// Implementation: store.cc (memory tier, purges), disk_tier.cc (index, writer thread),
// object_file.cc (the file format), cache_key.cc (CacheKey, VaryKey).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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
  // What the object counts against the byte bound: key, headers, body, tags, validators and a
  // fixed overhead (kObjectOverhead) for the bookkeeping around it.
  size_t bytes() const;
};
using ObjectPtr = std::shared_ptr<const Object>;
// Per object: the Object itself, its shared body's control block, the map and policy nodes.
inline constexpr size_t kObjectOverhead = 256;

struct StoreOptions {
  size_t memory_bytes = 64 << 20;
  std::string policy = "lru";  // an eviction policy's name; unknown: Open throws
  // Larger objects are not stored (they stream from the origin every time).
  size_t max_object_bytes = 8 << 20;
  // Memory shards, each with its share of memory_bytes and its own policy instance (so the
  // policy's order is exact within a shard, approximate across shards). 0: as many as leave
  // each shard room for two objects of max_object_bytes, from 1 to 16. An object larger than a
  // shard's share is not kept in memory (it is still written to disk).
  int shards = 0;
  // Disk tier: empty dir, none. Bounded by disk_bytes (oldest written removed first).
  std::string disk_dir;
  size_t disk_bytes = 1ull << 30;
  // Tests only: called at a few points where a race can be arranged; may block. "disk_write":
  // on the writer thread before it writes each file. "promote": in LoadFromDisk, after the
  // file was read and checked, before it is promoted into memory.
  std::function<void(std::string_view point)> test_hook;
};

struct StoreStats {
  uint64_t memory_objects = 0, memory_bytes = 0;
  uint64_t disk_objects = 0, disk_bytes = 0;
  uint64_t evictions = 0;    // objects evicted from memory for space
  uint64_t disk_errors = 0;  // files that could not be written, read or parsed (skipped)
  // Disk writes dropped because the writer's queue was full (the disk slower than the puts).
  uint64_t disk_dropped = 0;
};

class ObjectStore {
 public:
  static constexpr int kMaxVariants = 8;
  virtual ~ObjectStore() = default;
  // The stored response for `key` whose Vary selection matches this request, from memory;
  // nullptr if none (a hit counts as an access for the eviction policy).
  virtual ObjectPtr Lookup(std::string_view key, const HeaderLookup& request) = 0;
  // The same from the disk tier (blocking); a found object is promoted into memory. nullptr
  // too when a purge (or a newer write of that variant) came while the file was being read.
  virtual ObjectPtr LoadFromDisk(std::string_view key, const HeaderLookup& request) = 0;
  // Stores (replacing the variant with the same vary_key; with kMaxVariants already, the oldest
  // variant leaves), evicting to the bound. An object over max_object_bytes is not stored, and
  // the variant it would have replaced is removed (it is outdated). Written to disk in the
  // background when there is a tier (the write is dropped, and counted, when the writer's
  // queue is full).
  virtual void Put(ObjectPtr object) = 0;
  // Each returns how many objects it removed (memory, disk and queued writes counted once per
  // object). See CacheKeyPathPrefix and CacheKeyAnyHost for prefixes that span hosts.
  virtual size_t PurgeKey(std::string_view key) = 0;
  virtual size_t PurgePrefix(std::string_view key_prefix) = 0;
  virtual size_t PurgeTag(std::string_view tag) = 0;
  virtual StoreStats Stats() const = 0;
  // Blocks until the writer thread has written and removed every file queued so far (tests,
  // and a shutdown that wants the disk tier complete). Without a disk tier, returns at once.
  virtual void FlushDisk() = 0;
  // Blocks until the files of every purge made so far are removed from the disk tier and the
  // removal is synced (the admin API answers a purge after this: an acknowledged purge survives
  // a crash). Without a disk tier, returns at once.
  virtual void SyncRemovals() = 0;
};

// Throws std::invalid_argument for an unknown policy, std::runtime_error for a disk dir that
// cannot be made or read. With a disk tier, reads its index at once (objects written by an
// earlier run are found again: each file's header, not its body); files it cannot parse are
// removed and counted. The destructor finishes the writer's queue before it returns.
std::unique_ptr<ObjectStore> OpenObjectStore(const StoreOptions& options);

// The secondary cache key (RFC 9111 §4.1): for each field name in `vary`, in order, the name
// lower-cased and the request's value with whitespace around commas and at the ends removed; an
// absent field differs from an empty one (§4.1: absent matches only absent). Two requests select
// the same stored response when their keys are equal. "" for an empty `vary`.
std::string VaryKey(const std::vector<std::string>& vary, const HeaderLookup& request);

// The primary cache key: "GET" (HEAD shares GET's), the host lower-cased without a default
// port, the path as received, and the query's parameters sorted by name then value, each
// re-encoded the same way (so "?b=2&a=1" and "?a=1&b=%32" are one key); an empty query and no
// query are one key. Never contains a header the client chose other than Host.
// Layout: "GET /path?query host", the host last so that a URL path prefix is a key prefix on
// every host (CacheKeyPathPrefix). Default ports: both :80 and :443 are dropped, and the scheme
// is not in the key: the origin serves the same resource over either, so http and https
// clients share one object. Percent-encoding in the query: an encoded unreserved character
// (RFC 3986 §2.3) is decoded, other escapes get upper-case hex, reserved characters are left as
// they came (so "%2B" and "+" stay apart), and bytes that may not appear in a URL are encoded.
// Space and control bytes are percent-encoded in the host and the path too (they cannot come
// from a valid request line; escaping keeps the layout unambiguous). An empty path is "/".
std::string CacheKey(std::string_view method, std::string_view host, std::string_view path,
                     std::string_view query);
// The key prefix of every URL under `path_prefix` ("/media/") on every host: for PurgePrefix.
std::string CacheKeyPathPrefix(std::string_view path_prefix);
// The key prefix of exactly this URL (path and normalized query) on every host: for PurgePrefix.
std::string CacheKeyAnyHost(std::string_view path, std::string_view query);

}  // namespace millions::edge
