// TimelineStore: every user's home timeline (the ids of the newest photos of the users they
// follow), written by feed fan-out and read by the feed. Kept on its own Redis nodes
// ([[timeline.node]]: AOF everysec, a replica, never evicted or flushed), not on the cache nodes:
// a timeline is data, not a copy of it.
//
// A timeline is "built" once it has been filled from the database (Build); until then it may
// hold what fan-out pushed, but a reader must not trust it (it lacks the older photos) and
// rebuilds it. Pushes always land, built or not, and Build adds to what is there: a photo pushed
// while a reader was rebuilding from the database is in the timeline either way. Each timeline
// keeps the newest `cap` entries; older pages come from the database. See docs/queue.md.
//
// Thread-safety: every method may be called from any thread (they block for at most the timeout
// per round trip; not on an event loop). Ownership: owns its io thread and one client per node.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace millions::cache {

struct TimelineNode {
  std::string name;
  std::string host;
  int port = 0;
};

struct TimelineOptions {
  // The first node is the primary (every write); the others are its replicas, read when the
  // primary does not answer.
  std::vector<TimelineNode> nodes;
  int cap = 800;  // entries kept per timeline
  std::chrono::milliseconds timeout{200};
  std::chrono::milliseconds celebrities_ttl{5000};  // how long Celebrities() is remembered
  // The store's ACL user and password (RedisOptions); empty: no AUTH.
  std::string user, password;
};

struct TimelineEntry {
  int64_t photo_id = 0;
  int64_t owner_id = 0;
};

struct TimelinePage {
  bool built = false;  // false: rebuild it from the database before trusting it
  bool full = false;   // it holds `cap` entries: pages older than its last come from the database
  // Read from a replica because the primary did not answer: fan-out writes since the primary
  // went down are missing from it (they are retried until the primary is back).
  bool from_replica = false;
  std::vector<TimelineEntry> entries;  // newest first
};

class TimelineStore {
 public:
  virtual ~TimelineStore() = default;
  // Adds the photo to each user's timeline and trims each to `cap`. Idempotent.
  virtual Status Push(const std::vector<int64_t>& users, const TimelineEntry& entry) = 0;
  // Up to `limit` entries older than photo `before` (0: the newest), newest first.
  virtual Result<TimelinePage> Read(int64_t user, int64_t before, int limit) = 0;
  // Adds `entries` (the database's view) and marks the timeline built.
  virtual Status Build(int64_t user, const std::vector<TimelineEntry>& entries) = 0;
  // forget = false: the next read rebuilds (a new follow: add the followee's photos);
  // forget = true: the timeline is deleted and rebuilt from scratch (an unfollow).
  virtual Status Drop(int64_t user, bool forget) = 0;
  // Users whose posts are not fanned out (too many followers) but merged in at read time.
  virtual Status AddCelebrity(int64_t user) = 0;
  virtual Result<std::vector<int64_t>> Celebrities() = 0;
  virtual int cap() const = 0;
};

// Starts connecting at once, in the background; calls fail with 503 until a node answers.
std::unique_ptr<TimelineStore> OpenRedisTimelines(TimelineOptions options);

// The sorted-set member of an entry: the photo id zero-padded to 19 digits (so that the
// lexicographic order is the id order), ':', the owner id. Exposed for tests.
std::string TimelineMember(const TimelineEntry& e);
bool ParseTimelineMember(std::string_view member, TimelineEntry* e);

}  // namespace millions::cache
