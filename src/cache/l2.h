// L2: the shared cache tier on a pool of Redis nodes, as the two-level cache (tiered.h) sees it.
// Keys spread over the nodes by consistent hashing (hash_ring.h); a node that is down is skipped
// (its keys go to the next node: misses there, not errors), and a node that comes back is
// flushed before use (RedisOptions::flush_on_reconnect), so it serves nothing that missed
// invalidations while it was away.
//
// Leases, as in "Scaling Memcache at Facebook": a miss hands the reader a lease (a token kept
// beside the key for `lease` ms); only the holder may fill the key, and only while its lease
// stands. A delete removes the lease too, so a reader that loaded before a write cannot put its
// older value back after the write's delete. Readers that miss while another holds the lease
// wait and read again (no stampede across nodes). A delete also leaves a short "recent write"
// marker: a reader that misses while it stands loads from the primary, not from a replica that
// may not have the write yet.
//
// Invalidation broadcast: Publish sends keys on a Redis pub/sub channel that every web node
// subscribes to on every cache node, to drop them from its L1.
//
// Thread-safety: every method may be called from any thread except the L2's own io thread; calls
// block for at most the command timeout per round trip. Ownership: a RedisL2 owns its io thread,
// one client and one subscriber per node; the destructor closes them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cache/resp.h"
#include "core/result.h"

namespace millions {
class Env;
}

namespace millions::cache {

struct L2Lookup {
  enum class Kind { kHit, kLease, kWait, kUnavailable };
  Kind kind = Kind::kUnavailable;
  std::string value;          // kHit
  std::string token;          // kLease: pass to Fill or Release
  bool recent_write = false;  // kLease/kWait: a write deleted this key moments ago
};

struct L2NodeStats {
  std::string name;
  bool up = false;
  uint64_t evicted_keys = 0;  // Redis INFO stats, refreshed every few seconds
  uint64_t connects = 0;
  uint64_t flushes = 0;
  uint64_t timeouts = 0;
};

class L2 {
 public:
  virtual ~L2() = default;
  // A hit, or on a miss a lease (kLease) or the news that another reader holds it (kWait).
  // kUnavailable: no node is up or the node did not answer in time (a miss; load, do not fill).
  virtual L2Lookup Get(const std::string& key) = 0;
  // A lease for refreshing a key early: granted only while the stored value still begins with
  // `seen_prefix` (the version the caller read) and no one else holds a lease; else empty.
  // A reader that read the value just before someone else refreshed it gets none.
  virtual std::string TryLease(const std::string& key, const std::string& seen_prefix) = 0;
  // Stores `value` for `ttl` if `token` still holds the lease; true when stored.
  virtual bool Fill(const std::string& key, const std::string& token, const std::string& value,
                    std::chrono::milliseconds ttl) = 0;
  // Gives a lease back unused (the load failed), so that others need not wait it out.
  virtual void Release(const std::string& key, const std::string& token) = 0;
  // Deletes the keys and their leases, and marks them recently written. Sent to each key's
  // owner and to the next node on the ring (where the key lived while its owner was down).
  virtual void Delete(const std::vector<std::string>& keys) = 0;
  // Asks every web node to drop the keys from its L1. Fire and forget.
  virtual void Publish(const std::vector<std::string>& keys) = 0;
  virtual std::vector<L2NodeStats> Stats() const = 0;
  // Runs `cmds` together on the node that owns `key` (plain commands: no lease, no marker), for
  // small shared state kept beside the cache (counters.h: the log-in throttle). An Error when no
  // node is up or it did not answer in time.
  virtual Result<std::vector<RedisReply>> Run(const std::string& key,
                                              std::vector<std::vector<std::string>> cmds) {
    (void)key;
    (void)cmds;
    return MakeError(Errc::kUnavailable, "cache_unavailable", "no shared store");
  }
};

struct RedisL2Options {
  struct Node {
    std::string name;
    std::string host;
    int port = 0;
  };
  std::vector<Node> nodes;
  std::chrono::milliseconds timeout{100};
  std::chrono::milliseconds lease{2000};
  std::chrono::milliseconds write_marker{2000};  // a bound on replica lag that reads respect
  std::string channel = "millions:l1-invalidate";
  // Runs on the io thread for each broadcast received (this node's own included).
  std::function<void(const std::vector<std::string>& keys)> on_invalidate;
  // The nodes' ACL user and password (RedisOptions); empty: no AUTH.
  std::string user, password;
};

// Starts connecting to every node in the background and returns at once.
std::unique_ptr<L2> OpenRedisL2(RedisL2Options options, Env& env);

// Broadcast payloads: keys joined by '\n' (keys never contain one).
std::string JoinKeys(const std::vector<std::string>& keys);
std::vector<std::string> SplitKeys(const std::string& payload);

}  // namespace millions::cache
