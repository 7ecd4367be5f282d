// The PostgreSQL implementation of each store facet, all over one shared PgExecutor; assembled
// into a Store by OpenPgStore (pg_store.cc). Internal to src/data.
// Thread-safety: as the facets (any thread). Ownership: each facet shares the executor.
#pragma once

#include <memory>

#include "data/job_store.h"
#include "data/pg_executor.h"
#include "data/photo_store.h"
#include "data/session_store.h"
#include "data/user_store.h"

namespace millions::data {

std::unique_ptr<UserStore> MakePgUserStore(std::shared_ptr<PgExecutor> executor);
std::unique_ptr<PhotoStore> MakePgPhotoStore(std::shared_ptr<PgExecutor> executor);
std::unique_ptr<JobStore> MakePgJobStore(std::shared_ptr<PgExecutor> executor);
std::unique_ptr<SessionStore> MakePgSessionStore(std::shared_ptr<PgExecutor> executor);

}  // namespace millions::data
