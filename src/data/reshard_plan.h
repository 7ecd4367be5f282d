// ReshardPlan: the durable record of one `millions reshard` (docs/sharding.md, "Online
// resharding"): the map it starts from, the map it ends at, and each moving logical shard's
// state, written to etcd after every step so that a reshard killed at any point resumes where it
// was. Pure data and rules: what may follow what, which moves to work on next, the map in force
// after the cut-overs so far, and the progress line; the copier and the cut-over that act on
// the clusters use it.
//
// A move goes pending -> copying -> catching_up -> frozen -> verified -> switched -> cleaned.
// On resume each state says what to redo, and every step is idempotent so that redoing is safe:
//   copying      copy the shard's rows again (upserts into a target that only the copier writes)
//   catching_up  replay the source's changes after `applied_seq`
//   frozen       the source refuses writes to the shard: replay the last changes, verify
//   verified     publish the next map and mark the target the owner
//   switched     delete the shard's rows from the source, in batches
// Thread-safety: plain values. Ownership: values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "data/shard_map.h"

namespace millions::data {

enum class MoveState { kPending, kCopying, kCatchingUp, kFrozen, kVerified, kSwitched, kCleaned };
std::string_view MoveStateName(MoveState s);

struct ShardMove {
  int logical = 0;
  std::string from, to;  // cluster names
  MoveState state = MoveState::kPending;
  int64_t users = 0;        // users copied so far (verified count once verified)
  int64_t rows = 0;         // rows copied or replayed so far
  int64_t applied_seq = 0;  // the source's last change replayed onto the target
  int64_t pause_ms = -1;    // how long writes to the shard waited at its cut-over (-1: not yet)
};

struct ReshardPlan {
  ShardMap from, to;
  std::vector<ShardMove> moves;  // in logical shard order
  int64_t started_ms = 0;        // wall clock, for the rate and the ETA
  int64_t updated_ms = 0;
  bool done() const;
};

// The plan from `current` (the map in force) to `next`; moves only the logical shards whose
// cluster changes. Error when the maps have different logical shard counts or `next` is not a
// later version.
Result<ReshardPlan> MakeReshardPlan(const ShardMap& current, const ShardMap& next, int64_t now_ms);

// Moves `m` (an index into plan.moves) to `next`: only to the state after its own, or back to
// kCopying from kCatchingUp (a replay that found its changes gone restarts the copy) or from
// kFrozen (a verify that found a difference: the source is unfrozen and the copy redone).
Status Advance(ReshardPlan* plan, size_t m, MoveState next, int64_t now_ms);

// The moves to work on now: those in flight (past pending, before switched) first, then pending
// ones, up to `parallel` in flight; switched moves still to clean are listed after them.
std::vector<size_t> NextMoves(const ReshardPlan& plan, int parallel);

// The map in force: `from` with every switched (or cleaned) move's shard on its target, its
// version from.version plus the number of such moves (each cut-over publishes one version).
ShardMap MapInForce(const ReshardPlan& plan);

struct ReshardProgress {
  int shards_total = 0, shards_switched = 0;
  int64_t users = 0, rows = 0;
  double rows_per_s = 0;
  double eta_s = -1;  // -1: unknown until a shard has switched
  int64_t pause_p50_ms = -1, pause_max_ms = -1;
};
ReshardProgress Progress(const ReshardPlan& plan, int64_t now_ms);
// One line for a terminal: "[#####.....] 12/40 shards  3400 users  120000 rows  8500 rows/s
// ETA 0:42  pause p50 12 ms max 40 ms", `width` characters of bar.
std::string ProgressLine(const ReshardProgress& p, int width = 20);

// The plan as JSON for etcd and `reshard --status`, and back; parsing checks every field.
std::string ReshardPlanToJson(const ReshardPlan& plan);
Result<ReshardPlan> ReshardPlanFromJson(std::string_view json);

}  // namespace millions::data
