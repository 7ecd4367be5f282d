// Store: every piece of durable state the photo service keeps, as the union of its facets
// (user_store.h, photo_store.h, job_store.h, session_store.h), each a small interface that a
// sharded store can route by its key. Each stage implements them: SQLite for stage 1
// (OpenSqliteStore), PostgreSQL from stage 2 on (OpenPgStore). Both are built from per-facet
// implementations over one executor (pg_executor.h, sqlite_executor.h) by MakeFacetStore
// (facet_store.h), which also writes the debug line of each store operation.
// Errors: Result/Status; 404 not_found, 409 conflicts, 503 when the database is unavailable.
// Thread-safety: every method may be called from any thread; calls block, so callers run them
// on a BlockingPool, never on an event loop. Ownership: a Store owns its connections.
#pragma once

#include <memory>
#include <string>

#include "core/metrics.h"
#include "core/pg.h"
#include "data/job_store.h"
#include "data/photo_store.h"
#include "data/rows.h"
#include "data/session_store.h"
#include "data/user_store.h"

namespace millions::data {

struct ClusterOptions;

class Store : public UserStore, public PhotoStore, public JobStore, public SessionStore {
 public:
  ~Store() override = default;
  // A new ID (ids.h) naming `logical_shard`, unique across every node using this database: for
  // a new user (the shard of its handle), photo or job (its owner's shard). 503 when the
  // database that draws it is down.
  virtual Result<int64_t> NewId(int logical_shard) = 0;
  // Adds the store's own series (queries by member role, replica lag) to a node's registry.
  virtual void RegisterMetrics(metrics::Registry& registry) { (void)registry; }
};

// Opens (creating if needed) the SQLite store at `path` and applies its migrations.
// Throws std::runtime_error at start-up when the file cannot be used.
std::unique_ptr<Store> OpenSqliteStore(const std::string& path, int connections);

// Connects to PostgreSQL (lazily: a database that is down answers 503s) and applies the
// migrations. Throws std::runtime_error when the migrations cannot run at start-up.
std::unique_ptr<Store> OpenPgStore(const pg::Options& options);
// The same on a replicated cluster (data/pg_cluster.h): writes on the primary, replica reads
// spread over replicas within the lag bound.
std::unique_ptr<Store> OpenPgStore(const ClusterOptions& options);

}  // namespace millions::data
