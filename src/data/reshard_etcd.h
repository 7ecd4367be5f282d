// The reshard's keys in etcd (docs/sharding.md, "Online resharding"), beside the shard map and
// as the same `shardmap` user:
//   /millions/<deployment>/reshard/lock  held by the running reshard under a lease that it keeps
//                                         alive; a second reshard finds it and refuses to start.
//                                         Its value names the holder (host, pid, start), so a
//                                         holder that died on this host can be told from one
//                                         that runs, and its lease revoked at once.
//   /millions/<deployment>/reshard/plan  the ReshardPlan (reshard_plan.h) as JSON, written after
//                                         every step; a reshard that starts while an unfinished
//                                         plan is there resumes it.
// Thread-safety: as EtcdShardMapClient (calls serialised). Calls block (the `millions reshard`
// command's threads). Ownership: owns its client.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "data/reshard_plan.h"
#include "data/shard_map_etcd.h"

namespace millions::data {

std::string ReshardLockKey(std::string_view deployment);
std::string ReshardPlanKey(std::string_view deployment);

struct ReshardLockHolder {
  std::string host;
  int64_t pid = 0;
  int64_t started_ms = 0;
  int64_t lease = 0;  // etcd's lease id, as etcd printed it
};

class ReshardEtcd {
 public:
  // `options` as for the shard map (endpoints, user, password); its key is not used.
  ReshardEtcd(EtcdOptions options, std::string deployment);

  // Takes the lock under a new lease of `ttl_s` seconds. 409 `reshard_running` (with the
  // holder in `*holder`) when another holds it.
  Status Lock(const ReshardLockHolder& me, int ttl_s, ReshardLockHolder* holder);
  // Refreshes the lease; an error once it has expired (the lock may be another's by then).
  Status KeepAlive();
  // Revokes our lease (the lock goes with it).
  Status Unlock();
  // Revokes another holder's lease: for a holder known to be dead.
  Status Break(const ReshardLockHolder& holder);
  // The holder, or nullopt when the lock is free.
  Result<std::optional<ReshardLockHolder>> Holder();

  // The plan, or nullopt when none was ever written.
  Result<std::optional<ReshardPlan>> ReadPlan();
  Status WritePlan(const ReshardPlan& plan);

 private:
  std::unique_ptr<EtcdShardMapClient> etcd_;
  std::string lock_key_, plan_key_;
  std::string lease_;  // ours, as etcd printed it ("" before Lock)
};

}  // namespace millions::data
