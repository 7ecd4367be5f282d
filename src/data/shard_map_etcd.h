// The shard map in etcd (docs/sharding.md): one key per deployment,
// /millions/<deployment>/shardmap, holding the map's JSON (shard_map.h). `millions up` creates
// it at first start (only if absent: a transaction on the key's create revision), as etcd's
// `shardmap` user, whose role may touch /millions/ only. Every web node and worker holds the map
// as an immutable snapshot and follows it with a ShardMapWatcher.
//
// Watch or poll: etcd's JSON gateway streams a watch as one never-ending response, which our
// blocking HTTP client (core/http_client.h) cannot read, so the watcher polls the key instead, by
// its mod revision, every `interval` (500 ms by default: a read of a ~5 KB key, on one etcd
// member), and a node that meets the fence's wrong_shard reads it at once (Refresh). A map is
// swapped in only when its version is newer: the snapshot never goes back.
//
// Thread-safety: EtcdShardMapClient serialises its calls (a mutex over the token); the
// watcher's Current() is an atomic load from any thread. All calls block: start-up, the
// watcher's own thread, or a store call on a BlockingPool, never an event loop.
// Ownership: the watcher owns its client and its polling thread, stopped by the destructor.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/result.h"
#include "data/shard_map.h"

namespace millions::data {

// "/millions/<deployment>/shardmap".
std::string ShardMapKey(std::string_view deployment);

struct EtcdOptions {
  std::vector<std::string> endpoints;  // host:port of etcd's client listeners, tried in turn
  std::string key;
  std::string user, password;  // empty user: etcd without authentication
  std::chrono::milliseconds timeout{2000};
};

struct VersionedShardMap {
  ShardMap map;
  int64_t mod_revision = 0;  // etcd's revision of the key's last write
};

class EtcdShardMapClient {
 public:
  explicit EtcdShardMapClient(EtcdOptions options);
  // The map in etcd: 404 not_found when the key is absent, 503 when no member answers, 500
  // bad_shard_map when it does not parse.
  Result<VersionedShardMap> Read();
  // Writes `map` when the key is absent; then the map in force (the one written, or the one that
  // was there before: a second `up` never replaces a map).
  Result<VersionedShardMap> CreateIfAbsent(const ShardMap& map);
  // Replaces the map only while the key's mod revision is still `expect_revision` (a reshard's
  // publish: two writers cannot both win); 409 stale_revision otherwise. `new_revision`
  // (optional) gets the key's mod revision after the write.
  Status Publish(const ShardMap& map, int64_t expect_revision, int64_t* new_revision = nullptr);

  // POST /v3/<path> (etcd's JSON gateway) on the first member that answers, logged in; the
  // reply's body. For other keys under the same user's prefix (the reshard's lock and plan).
  Result<std::string> Post(const std::string& path, const std::string& body);

 private:
  Result<std::string> PostOnce(const std::string& path, const std::string& body, bool* auth_failed);
  Status Authenticate();

  EtcdOptions opt_;
  std::mutex mu_;
  std::string token_;  // guarded by mu_
  size_t next_ = 0;    // the member to try first (the last that answered), guarded by mu_
};

class ShardMapWatcher {
 public:
  // Starts with `first` in force and polls every `interval`; `on_change` (optional) runs on the
  // watcher's thread after each swap, with the new map.
  ShardMapWatcher(std::unique_ptr<EtcdShardMapClient> client, VersionedShardMap first,
                  std::chrono::milliseconds interval,
                  std::function<void(const ShardMap&)> on_change = nullptr);
  ~ShardMapWatcher();

  std::shared_ptr<const ShardMap> Current() const { return current_.load(); }
  // Reads etcd now (not waiting for the next poll) and swaps in a newer map. At most one read
  // at a time; a caller arriving during one waits for it.
  void Refresh();
  uint64_t swaps() const { return swaps_.load(); }

 private:
  void Loop();

  std::unique_ptr<EtcdShardMapClient> client_;
  std::chrono::milliseconds interval_;
  std::function<void(const ShardMap&)> on_change_;
  std::atomic<std::shared_ptr<const ShardMap>> current_;
  std::atomic<uint64_t> swaps_{0};
  std::mutex refresh_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// etcd's JSON gateway carries keys and values in base64.
std::string EtcdBase64(std::string_view s);
bool EtcdUnbase64(std::string_view s, std::string* out);

// Swaps `next` into `current` when it is newer (a higher version); true when it did. Pure but
// for the atomic: the rule the watcher and tests share.
bool SwapIfNewer(std::atomic<std::shared_ptr<const ShardMap>>& current,
                 std::shared_ptr<const ShardMap> next);

}  // namespace millions::data
