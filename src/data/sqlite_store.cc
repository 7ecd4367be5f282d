// OpenSqliteStore: the embedded (stage 1) Store, one SQLite file in WAL mode holding users,
// sessions, follows, photos, media blobs and edit jobs; assembled from the per-facet SQL over
// one executor, with the shared schema's migrations (schema.h).
#include <stdexcept>

#include "data/facet_store.h"
#include "data/ids.h"
#include "data/schema.h"
#include "data/sqlite_executor.h"
#include "data/sqlite_facets.h"
#include "data/store.h"

namespace millions::data {
namespace {

using sqlite::Conn;
using sqlite::Stmt;

void Migrate(SqliteExecutor& ex) {
  const std::vector<std::string> migrations = Migrations(Dialect::kSqlite);
  Status st = ex.Write<Unit>([&](Conn& c) -> Result<Unit> {
    if (Status s = c.Exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
        !s.ok())
      return s.error();
    Stmt q = c.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    auto r = q.Step();
    if (!r.ok()) return r.error();
    int64_t have = q.Int(0);
    int64_t want = static_cast<int64_t>(migrations.size());
    if (have > want)
      return MakeError(Errc::kInternal, "schema_too_new",
                       "database schema is newer than this binary");
    for (int64_t v = have; v < want; ++v) {
      if (Status s = c.Exec(migrations[v].c_str()); !s.ok()) return s.error();
      Stmt ins = c.Prepare("INSERT INTO schema_version(version) VALUES(?)");
      ins.Bind(1, v + 1);
      if (Status s = ins.Run(); !s.ok()) return s.error();
    }
    return Unit{};
  });
  if (!st.ok()) throw std::runtime_error("migrating the database: " + st.error().message);
}

}  // namespace

std::unique_ptr<Store> OpenSqliteStore(const std::string& path, int connections) {
  auto ex = std::make_shared<SqliteExecutor>(path, connections);
  Migrate(*ex);
  Facets f;
  f.users = MakeSqliteUserStore(ex);
  f.photos = MakeSqlitePhotoStore(ex);
  f.jobs = MakeSqliteJobStore(ex);
  f.sessions = MakeSqliteSessionStore(ex);
  // One process writes the file: its generator alone keeps IDs unique.
  auto ids = std::make_shared<IdGenerator>(Env::Default(), 0);
  f.new_id = [ids](int shard) -> Result<int64_t> { return ids->Next(shard); };
  return MakeFacetStore(std::move(f));
}

}  // namespace millions::data
