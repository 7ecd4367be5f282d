// OpenPgStore: the PostgreSQL Store (stage 2 on), assembled from the per-facet SQL over one
// executor; media blobs in bytea, every statement prepared once per connection, the shared
// schema's migrations (schema.h) applied under an advisory lock so that several web nodes
// starting together migrate once.
#include <iterator>
#include <stdexcept>

#include "core/pg.h"
#include "data/facet_store.h"
#include "data/pg_cluster.h"
#include "data/pg_executor.h"
#include "data/pg_facets.h"
#include "data/schema.h"
#include "data/shard_fence.h"
#include "data/store.h"

namespace millions::data {
namespace {

void Migrate(PgExecutor& ex) {
  const std::vector<std::string> migrations = Migrations(Dialect::kPostgres);
  Status st = ex.WriteTx<Unit>([&](pg::Conn& c) -> Result<Unit> {
    // Nodes starting together take turns; the lock is released at COMMIT.
    if (Status s = c.Simple("SELECT pg_advisory_xact_lock(7243120)"); !s.ok()) return s.error();
    if (Status s = c.Simple("CREATE TABLE IF NOT EXISTS schema_version(version BIGINT NOT NULL)");
        !s.ok())
      return s.error();
    auto r = c.Exec("schema_version", "SELECT COALESCE(MAX(version), 0) FROM schema_version", {});
    if (!r.ok()) return r.error();
    int64_t have = r->Int(0, 0);
    int64_t want = static_cast<int64_t>(migrations.size());
    if (have > want)
      return MakeError(Errc::kInternal, "schema_too_new",
                       "database schema is newer than this binary");
    for (int64_t v = have; v < want; ++v) {
      if (Status s = c.Simple(migrations[v].c_str()); !s.ok()) return s.error();
      auto ins =
          c.Exec("set_version", "INSERT INTO schema_version(version) VALUES($1)", {pg::P(v + 1)});
      if (!ins.ok()) return ins.error();
    }
    return Unit{};
  });
  if (!st.ok()) throw std::runtime_error("migrating PostgreSQL: " + st.error().message);
}

}  // namespace

namespace {
ClusterOptions OneMember(const pg::Options& options) {
  ClusterOptions o;
  ClusterOptions::Member m;
  m.name = "pg";
  m.conninfo = options.conninfo;
  o.members.push_back(m);
  o.pool_size = options.pool_size;
  o.connect_timeout_s = options.connect_timeout_s;
  o.statement_timeout_ms = options.statement_timeout_ms;
  return o;
}
}  // namespace

std::unique_ptr<Store> OpenPgStore(const pg::Options& options) {
  return OpenPgStore(OneMember(options));
}

Result<int> PrepareShardCluster(const pg::Options& options, const ShardMap& map,
                                const std::string& cluster) {
  ClusterOptions o = OneMember(options);
  o.pool_size = 1;
  PgExecutor ex(o);
  try {
    Migrate(ex);
  } catch (const std::exception& e) {
    return MakeError(Errc::kUnavailable, "migrate", e.what());
  }
  int index = -1;
  for (size_t i = 0; i < map.clusters.size(); ++i)
    if (map.clusters[i] == cluster) index = static_cast<int>(i);
  return ex.WriteTx<int>([&](pg::Conn& c) -> Result<int> {
    // The count is a constant of the deployment; the function is inlined into the trigger.
    std::string fn =
        "CREATE OR REPLACE FUNCTION millions_logical_shards() RETURNS INT LANGUAGE SQL "
        "IMMUTABLE AS $$ SELECT " +
        std::to_string(map.logical()) + " $$";
    if (Status s = c.Simple(fn.c_str()); !s.ok()) return s.error();
    if (Status s = c.Simple("LOCK TABLE shard_ownership IN EXCLUSIVE MODE"); !s.ok())
      return s.error();
    auto have = c.Exec("ownership_rows", "SELECT count(*) FROM shard_ownership", {});
    if (!have.ok()) return have.error();
    // A cluster the map does not name yet (added for a reshard) holds nothing: its table stays
    // empty until the reshard's first move marks a shard `incoming` there.
    if (have->Int(0, 0) > 0 || index < 0) return 0;
    int written = 0;
    for (int s = 0; s < map.logical(); ++s) {
      if (map.owner[static_cast<size_t>(s)] != index) continue;
      auto r = c.Exec("own_shard",
                      "INSERT INTO shard_ownership(logical, state, map_version) "
                      "VALUES($1, 'owned', $2)",
                      {pg::P(int64_t{s}), pg::P(map.version)});
      if (!r.ok()) return r.error();
      ++written;
    }
    return written;
  });
}

std::unique_ptr<Store> OpenPgStore(const ClusterOptions& options) {
  auto ex = std::make_shared<PgExecutor>(options);
  Migrate(*ex);
  Facets f;
  f.users = MakePgUserStore(ex);
  f.photos = MakePgPhotoStore(ex);
  f.jobs = MakePgJobStore(ex);
  f.sessions = MakePgSessionStore(ex);
  // On the primary: the sequence is the cluster's, and a replica cannot advance it.
  f.new_id = [ex](int shard) {
    return ex->Write<int64_t>([&](pg::Conn& c) -> Result<int64_t> {
      auto r = c.Exec("new_id", "SELECT millions_next_id($1)", {pg::P(int64_t{shard})});
      if (!r.ok()) return r.error();
      return r->Int(0, 0);
    });
  };
  f.register_metrics = [ex](metrics::Registry& registry) { ex->RegisterMetrics(registry); };
  return MakeFacetStore(std::move(f));
}

}  // namespace millions::data
