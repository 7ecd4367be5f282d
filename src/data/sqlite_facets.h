// The SQLite implementation of each store facet, all over one shared SqliteExecutor; assembled
// into a Store by OpenSqliteStore (sqlite_store.cc). Internal to src/data.
// Thread-safety: as the facets (any thread). Ownership: each facet shares the executor.
#pragma once

#include <memory>

#include "data/job_store.h"
#include "data/photo_store.h"
#include "data/session_store.h"
#include "data/sqlite_executor.h"
#include "data/user_store.h"

namespace millions::data {

std::unique_ptr<UserStore> MakeSqliteUserStore(std::shared_ptr<SqliteExecutor> executor);
std::unique_ptr<PhotoStore> MakeSqlitePhotoStore(std::shared_ptr<SqliteExecutor> executor);
std::unique_ptr<JobStore> MakeSqliteJobStore(std::shared_ptr<SqliteExecutor> executor);
std::unique_ptr<SessionStore> MakeSqliteSessionStore(std::shared_ptr<SqliteExecutor> executor);

}  // namespace millions::data
