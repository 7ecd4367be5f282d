// MakeFacetStore: a Store assembled from one implementation of each facet, for both dialects
// (and, later, for a sharded store routing each facet by its key). It writes one debug-level
// log line per store operation ("store op": op, duration_ms, member, ok, error), under the
// calling thread's request context (BlockingPool::Run carries it to the pool thread); at the
// default level it costs one level check. Executors name the member that served a statement
// with NoteMember.
// Thread-safety: as the facets (any thread). Ownership: the store owns the facets; facets share
// their executor (shared_ptr), which lives as long as the last of them.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "core/metrics.h"
#include "data/store.h"

namespace millions::data {

struct Facets {
  std::unique_ptr<UserStore> users;
  std::unique_ptr<PhotoStore> photos;
  std::unique_ptr<JobStore> jobs;
  std::unique_ptr<SessionStore> sessions;
  std::function<Result<int64_t>(int logical_shard)> new_id;
  std::function<void(metrics::Registry&)> register_metrics;  // may be empty
};

// All four facets and new_id must be set.
std::unique_ptr<Store> MakeFacetStore(Facets facets);

// Called by an executor with the member that served (or was asked) for the operation running
// on this thread; the operation's log line names the last one. A no-op unless debug logging
// is on and an operation is in progress on this thread.
void NoteMember(std::string_view member);

}  // namespace millions::data
