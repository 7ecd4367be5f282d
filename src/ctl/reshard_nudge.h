// The reshard's nudge at a cut-over (docs/sharding.md, "Online resharding", step 4): every web
// node is asked to re-read the shard map now (`POST /shardmap/refresh?version=V`), all at once,
// so that none reads a moved shard from its old cluster once writes go to the new one.
// Thread-safety: a free function; it blocks the calling thread (one thread per node asked) for
// at most `timeout`. Ownership: values only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace millions::ctl {

// For each of `nodes` (host:port), whether it answered (any HTTP answer but 403: a node whose
// etcd read failed is the poll's to fix; one that did not answer may be down or unreachable from
// here). `token`: secret::Derive(the shard map's etcd password, secret::kShardMapRefresh), sent as
// `Authorization: Bearer` (empty: none sent).
std::vector<bool> NudgeWebNodes(const std::vector<std::string>& nodes, int64_t version,
                                const std::string& token, std::chrono::milliseconds timeout);

}  // namespace millions::ctl
