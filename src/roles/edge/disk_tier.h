// DiskTier: the object store's files (object_file.h), their index in memory (key -> files,
// tag -> files, write order) and the writer thread that writes and removes them. Private to
// the edge's store (store.cc).
// Purges edit the index at once, so a lookup after one never finds a purged file, and cancel
// queued and in-flight writes of purged objects; the writer removes the files later. A write
// commits (rename over the final name, then the index) under the index's mutex after checking
// it was not cancelled meanwhile, so a purge cannot be undone by a write it raced. A queued
// removal is skipped when its name was written again since (the rename already replaced the
// old file; unlinking would remove the new one).
// Revalidations: a write whose body is the very one the variant's indexed file holds (a 304's
// refreshed copy shares its stale object's body) writes only a head file beside it
// (object_file.h), not the body again. The tier notes which body each file holds when it writes
// the file and when LoadFromDisk promotes it (a weak reference: nothing is kept alive); the
// writer decides when it takes the job, and commits the head file only if the object file it
// applies to is still indexed (under the same mutex, with the same cancellation check). A whole
// write removes the variant's head file after its rename (its seq is newer, so a crash between
// the two leaves a head file that loses); removals and evictions remove both files, the object
// file first (a crash between leaves an orphan head file, removed at the next start).
// Durability: a purge is on disk once the writer has removed its files (milliseconds; it does
// removals before writes); SyncRemovals waits for that (and syncs the directory), so the admin
// API acknowledges a purge only once a crash can no longer bring its files back.
// Thread-safety: every method may be called from any thread; one mutex guards the index and the
// queues, never held while a file is read or written (only around rename and unlink). Callers
// may hold a memory shard's mutex when they call Current (lock order: shard, then this).
// Ownership: owns the writer thread (joined by the destructor, after the queue is done) and
// references to queued objects.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "roles/edge/store.h"

namespace millions::edge {

// What a purge removed, one "key\0vary_key" per object, so that memory and disk count once.
using RemovedSet = std::unordered_set<std::string>;
std::string ObjectId(std::string_view key, std::string_view vary_key);
// Whether a stored variant answers this request (never for Vary: *).
bool VaryMatches(const std::vector<std::string>& vary, std::string_view vary_key,
                 const HeaderLookup& request);

class DiskTier {
 public:
  // Scans `dir` (made if missing) and indexes its files' heads; removes temp files and files
  // that do not parse (counted in errors). Throws std::runtime_error when the dir cannot be made
  // or read, or when another process holds it (dir/.lock).
  DiskTier(std::string dir, uint64_t max_bytes, std::function<void()> before_write);
  ~DiskTier();
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  // Queues the object's file (replacing a queued write of the same variant). Dropped, and
  // counted, when the queue holds too many bytes already or the object exceeds max_bytes.
  // When the object's body is the one the variant's indexed file holds (a revalidation's
  // copy), only a head file is written.
  void Write(ObjectPtr object);
  // Removes the variant from the index and the queue at once, its file in the background.
  void Remove(std::string_view key, std::string_view vary_key);

  struct Candidate {
    std::string name;
    uint64_t seq = 0;
  };
  // The newest indexed file of `key` whose Vary selection matches the request.
  std::optional<Candidate> Find(std::string_view key, const HeaderLookup& request) const;
  // Reads and checks the candidate's file (blocking). nullptr when it is gone or was rewritten
  // since Find, or is corrupt (then removed from the index and the disk, and counted).
  std::shared_ptr<Object> Read(const Candidate& c);
  // Whether the candidate is still indexed as Find saw it (no purge or rewrite since). When it
  // is and `body` is given (LoadFromDisk promotes the object it read), notes that the file
  // holds that body: a refresh of the object then writes only a head file.
  bool Current(const Candidate& c, const std::shared_ptr<const std::string>& body = nullptr);

  void PurgeKey(std::string_view key, RemovedSet* removed);
  void PurgePrefix(std::string_view prefix, RemovedSet* removed);
  void PurgeTag(std::string_view tag, RemovedSet* removed);

  // Blocks until every write and removal queued so far is done.
  void Flush();
  // Blocks until every removal queued so far is done (not the writes), then fsyncs the
  // directory: the purges made before the call survive a crash of the process or the machine.
  void SyncRemovals();

  struct Stats {
    uint64_t objects = 0, bytes = 0, errors = 0, dropped = 0;
  };
  Stats GetStats() const;

 private:
  struct Entry {
    std::string key, vary_key;
    std::vector<std::string> vary;  // to match requests without reading the file
    std::vector<std::string> tags;
    uint64_t seq = 0;           // the newest head's: the head file's when there is one
    uint64_t bytes = 0;         // both files' sizes
    uint64_t object_seq = 0;    // the object file's own seq and size
    uint64_t object_bytes = 0;  // (bytes - object_bytes: the head file's)
    // The body the object file holds, once written or promoted in this run.
    std::weak_ptr<const std::string> body;
  };
  struct Job {
    ObjectPtr object;
    std::string name;
    size_t bytes = 0;
    bool cancelled = false;
  };

  std::string Path(std::string_view name) const;
  std::string ObjPath(std::string_view name) const;
  std::string HeadPath(std::string_view name) const;
  void Scan();
  void Run();
  // Takes the job from the queue, writes its file (or head file) with mu_ released, commits.
  void WriteJob(const std::shared_ptr<Job>& job, std::unique_lock<std::mutex>& lock);
  // The rest run under mu_.
  // Indexes the name's files (replacing its entry), then evicts to the bounds.
  void Commit(const std::string& name, Entry e);
  // Unlinks the name's object file, then its head file.
  void RemoveFiles(const std::string& name) const;
  void Erase(const std::string& name);
  // Erase, and queue the file's removal.
  void Drop(const std::string& name, RemovedSet* removed);
  // Cancels queued and in-flight writes whose object matches.
  void CancelWrites(const std::function<bool(const Object&)>& match, RemovedSet* removed);
  bool IsCurrent(const Candidate& c) const;
  static Entry MakeEntry(const Object& o);

  const std::string dir_;
  const uint64_t max_bytes_;
  const std::function<void()> before_write_;
  int lock_fd_ = -1;  // holds flock(dir/.lock) for the tier's life

  mutable std::mutex mu_;
  std::condition_variable work_cv_;                                    // the writer waits for work
  std::condition_variable idle_cv_;                                    // Flush waits for the writer
  std::unordered_map<std::string, Entry> files_;                       // name -> entry
  std::map<std::string, std::vector<std::string>, std::less<>> keys_;  // key -> names
  std::unordered_map<std::string, std::unordered_set<std::string>> tags_;  // tag -> names
  std::map<uint64_t, std::string> by_seq_;                                 // oldest written first
  uint64_t bytes_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t errors_ = 0, dropped_ = 0;

  std::deque<std::shared_ptr<Job>> writes_;  // cancelled jobs stay until the writer skips them
  std::unordered_map<std::string, std::shared_ptr<Job>> queued_;  // name -> live queued job
  size_t queued_bytes_ = 0;
  std::shared_ptr<Job> inflight_;
  std::deque<std::string> removals_;
  uint64_t removals_queued_ = 0, removals_done_ = 0;  // for SyncRemovals
  bool stop_ = false;

  std::thread writer_;  // last: starts after everything above exists
};

}  // namespace millions::edge
