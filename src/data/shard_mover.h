// ShardMover: the steps that move one logical shard's rows from one PostgreSQL cluster (the
// source) to another (the target), online (docs/sharding.md, "Online resharding"). The reshard
// (ctl/reshard.h) drives them in the order of data/reshard_plan.h and records each step, so that
// every step is idempotent and may be repeated after a crash:
//   PrepareTarget  the target's shard_ownership row `incoming` (only the copier may write the
//                  shard there); rows of the shard left there by an earlier attempt removed
//   StartCapture   the source's row `moving`: from now on the fence trigger appends each change
//                  to the shard into shard_changes (schema.cc migration 5); returns once every
//                  transaction that began before is over, so none writes uncaptured afterwards
//   Copy           a snapshot (REPEATABLE READ) of the shard's rows of every owned table,
//                  upserted into the target
//   Replay         the changes after a seq: each changed row read again from the source by its
//                  key, upserted into the target, or deleted there when it is gone
//   Freeze         the source's row `frozen`: writers get MS002 and wait (the sharded store's
//                  back-off); returns once every transaction that began before is over
//   Verify         per table and per user (the group a row belongs to), row counts and a
//                  checksum of the rows on both sides; any difference is listed
//   MarkTargetFrozen   the target `frozen` before the map that names it is published
//   MarkTargetOwned, DropSource   the cut-over: the target `owned`, the source `gone`
//   Cleanup        the last changes replayed (edges a stale node wrote towards the shard after
//                  its cut-over), then the shard's rows deleted from the source in batches,
//                  its changes too
// Which rows are the shard's: users, photos, jobs by the shard bits of their id
// (photo_versions by their photo's), follow edges with either end in the shard (an edge whose
// other end the cluster keeps is kept there), sessions, idempotency keys and blobs by
// StableHash of their key (token hash, scope, key) modulo the logical shard count, computed
// here on the client (SQL holds the same function, used only by the trigger).
// The copier's and the clean-up's writes run with `SET LOCAL millions.reshard = 'on'`, which
// the trigger lets through without a check or a capture.
// Thread-safety: one mover per pair of connections, used by one thread; movers of different
// shards may run at once on other connections. Ownership: borrows the connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/pg.h"
#include "core/result.h"

namespace millions::data {

struct MoverOptions {
  int logical_shards = 1024;
  int64_t cleanup_batch = 2000;  // rows per DELETE transaction
  int64_t blob_batch = 64;       // blobs per copy batch (each may be megabytes)
  int64_t replay_batch = 5000;   // changes per replay round-trip
  // How long StartCapture and Freeze wait for transactions that began before them.
  std::chrono::milliseconds settle_timeout{10'000};
  // Sessions whose application_name starts with this are the reshard's own (a snapshot copy
  // may stay open for long): the settle wait ignores them.
  std::string own_application_name = "millions-reshard";
};

struct CopyCounts {
  int64_t users = 0;  // users rows copied
  int64_t rows = 0;   // rows of every table copied
};

struct ReplayCounts {
  int64_t changes = 0;      // distinct changed keys replayed
  int64_t rows = 0;         // rows upserted or deleted on the target
  int64_t applied_seq = 0;  // the last seq replayed (the argument when there was nothing)
};

struct VerifyReport {
  int64_t users = 0, rows = 0;          // on the source
  std::vector<std::string> mismatches;  // "photos user 123: source 2 rows ..., target 1 ..."
  bool ok() const { return mismatches.empty(); }
};

class ShardMover {
 public:
  ShardMover(pg::Conn& source, pg::Conn& target, int logical, MoverOptions options);

  Status PrepareTarget(int64_t map_version);
  Status StartCapture(int64_t map_version);
  Result<CopyCounts> Copy();
  Result<ReplayCounts> Replay(int64_t after_seq);
  Status Freeze();
  Result<VerifyReport> Verify();
  // The cut-over's first half: the target's row `frozen` (writes routed there by the new map
  // wait, as the source's do) until every web node routes by the new map; then
  // MarkTargetOwned and DropSource, at once.
  Status MarkTargetFrozen(int64_t map_version);
  Status MarkTargetOwned(int64_t map_version);
  Status DropSource(int64_t map_version);
  // Replays the changes after `after_seq` (follow edges written since the cut-over by a node
  // whose map was stale: the fence takes and captures them), then deletes the shard's rows from
  // the source: the count deleted. The source's ownership row goes too, unless it is the
  // cluster's last (an empty shard_ownership means an unsharded cluster that takes every row).
  Result<int64_t> Cleanup(int64_t after_seq);

  int logical() const { return logical_; }

 private:
  Status SettleOlderTransactions(pg::Conn& c);
  // Deletes the shard's rows on `c` (the source's clean-up, the target's leftovers), keeping
  // follow edges whose other end `c`'s cluster holds or receives.
  Result<int64_t> DeleteShardRows(pg::Conn& c);
  // The raw shard bits (0..8191) that are this logical shard: "{s,s+L,...}".
  std::string BitsArray() const;

  pg::Conn& src_;
  pg::Conn& dst_;
  int logical_;
  MoverOptions opt_;
};

// The logical shard of a session token hash, an idempotency scope or a blob key: their routing
// in the sharded store (sharded_store.cc).
int LogicalShardOfKey(std::string_view key, int logical_shards);

// Literals of PostgreSQL arrays for a parameter: {1,2,3} and {"a","b\"c"}.
std::string PgIntArray(const std::vector<int64_t>& v);
std::string PgTextArray(const std::vector<std::string>& v);

}  // namespace millions::data
