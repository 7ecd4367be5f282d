// The executor of `millions reshard` (reshard.h): runs a ReshardPlan (data/reshard_plan.h) to
// its end with `parallel` worker threads, each taking the next move (NextMoves) and doing one
// step of it with a ShardMover (data/shard_mover.h), then recording the plan in etcd:
//   pending      target `incoming`, capture on at the source             -> copying
//   copying      the snapshot copy (again, on a resume)                   -> catching_up
//   catching_up  replays until a round brings few changes                 -> frozen
//   frozen       freeze, last replay, verify (a difference: unfreeze, -> copying, at most
//                three times)                                             -> verified
//   verified     target owned, the next map version published, source gone -> switched
//   switched     after `grace` (every web node polls the map each 500 ms), the source's rows
//                deleted                                                   -> cleaned
// The write pause of a shard, from its freeze to its source giving it up, goes into the plan
// (pause_ms). A thread keeps the lock's lease alive; losing it stops the run. SIGINT/SIGTERM
// stop it too, after the cut-overs in progress (a shard is never left frozen by a clean stop;
// a crash may leave one frozen, whose writes then wait, and fail after the store's bound,
// until the resumed run goes on).
// Thread-safety: RunPlan runs on the caller's thread and joins every thread it starts.
// Ownership: borrows the etcd clients.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/pg.h"
#include "data/reshard_etcd.h"
#include "data/reshard_plan.h"
#include "data/shard_map_etcd.h"

namespace millions::ctl {

struct ExecutorOptions {
  int parallel = 2;
  std::chrono::milliseconds grace{2000};
  std::chrono::seconds lock_ttl{10};
  bool progress = true;
  int catch_up_rounds = 10;  // replays before freezing at the latest
  int small_tail = 50;       // a replay with this few changes ends the catch-up
  // The web nodes (host:port) told to re-read the map at each cut-over before the source gives
  // the shard up (POST /shardmap/refresh): none still reads the old cluster once writes go to
  // the new one. A node that does not answer is left out from then on (its poll catches up).
  std::vector<std::string> web_nodes;
  std::string nudge_token;  // secret::Derive(shard map password, secret::kShardMapRefresh)
  std::chrono::milliseconds nudge_timeout{300};
  // How long a move's steps are retried while its clusters are unavailable (a failover).
  std::chrono::milliseconds unavailable_for{60'000};
};

// 0 when every move is cleaned; 1 when a step failed for good, the lock was lost, or a signal
// stopped the run (the plan in etcd says where to resume).
int RunPlan(data::ReshardPlan plan, const std::map<std::string, pg::Options>& clusters,
            data::ReshardEtcd& etcd, data::EtcdShardMapClient& maps, const ExecutorOptions& o);

struct PauseStats {
  int count = 0;
  int64_t p50 = -1, p99 = -1, max = -1;
};
PauseStats Pauses(const data::ReshardPlan& plan);

}  // namespace millions::ctl
