// `millions reshard`: moves logical shards between the database clusters of a running sharded
// topology, online (docs/sharding.md, "Online resharding"). The next map comes from the
// topology's shard function (`--shards N`: the first N clusters of the topology; `--add
// CLUSTER`: the map's clusters and one more) or moves one user's logical shard onto a cluster
// of its own (`--isolate USER`). The run:
//   - takes the lock /millions/<deployment>/reshard/lock under an etcd lease it keeps alive
//     (a second reshard refuses to start; a holder that died on this host is broken at once);
//   - writes the plan (data/reshard_plan.h) to etcd and then again after every step, or finds
//     an unfinished one there and resumes it;
//   - moves the shards a few at a time (data/shard_mover.h): copy with change capture, catch
//     up, freeze, verify, cut over (the target owns the shard, the next map version is
//     published in etcd, the source gives it up), and, once every web node has had time to
//     read the new map, deletes the moved rows from the source;
//   - shows a progress line on stderr and, at the end, the write pause per shard.
// `--status` prints the recorded plan and who holds the lock.
// Thread-safety: run from main; it runs its own threads. Ownership: values.
#pragma once

#include <string>

namespace millions::ctl {

struct ReshardFlags {
  std::string topology = "topologies/local.toml";
  int shards = 0;        // --shards N
  std::string add;       // --add CLUSTER
  std::string isolate;   // --isolate USER (a handle or a user id)
  std::string to;        // --to CLUSTER (with --isolate)
  bool status = false;   // --status
  int parallel = 2;      // shards in flight at once
  int grace_ms = 2000;   // after a cut-over, before the source's rows are deleted
  bool progress = true;  // the progress line on stderr
};

// 0 when the plan ran to its end (or --status printed); 1 on an error (the plan stays in etcd:
// the same command resumes it) or when another reshard holds the lock; 2 on a usage error.
int RunReshard(const ReshardFlags& flags);

}  // namespace millions::ctl
