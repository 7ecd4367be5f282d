// JobStore on PostgreSQL: photo edit jobs (SQL only; routing in pg_executor.h).
#include "core/pg.h"
#include "data/pg_facets.h"
#include "data/sql_common.h"

namespace millions::data {
namespace {

using pg::Conn;
using pg::P;
using pg::Rows;

JobRow ReadJob(const Rows& r, int i) {
  return JobRow{
      r.Int(i, 0),  r.Int(i, 1),  r.Int(i, 2), r.Text(i, 3), r.Text(i, 4),
      r.Text(i, 5), r.Text(i, 6), r.Int(i, 7), r.Int(i, 8),  static_cast<int>(r.Int(i, 9))};
}

class PgJobs final : public JobStore {
 public:
  explicit PgJobs(std::shared_ptr<PgExecutor> ex) : ex_(std::move(ex)) {}

  Status CreateJob(const JobRow& j) override {
    return ex_->RunFor(
        j.owner_id, "create_job",
        "INSERT INTO jobs(id, photo_id, owner_id, status, ops, created_ms)"
        " VALUES($1,$2,$3,$4,$5,$6)",
        {P(j.id), P(j.photo_id), P(j.owner_id), P(j.status), P(j.ops_json), P(j.created_ms)});
  }

  Result<JobRow> GetJob(int64_t id, Consistency c) override {
    return ex_->Read<JobRow>(c, [&](Conn& conn) -> Result<JobRow> {
      auto r = conn.Exec("get_job",
                         "SELECT id, photo_id, owner_id, status, ops, result_key, error,"
                         " created_ms, finished_ms, attempts FROM jobs WHERE id = $1",
                         {P(id)});
      if (!r.ok()) return r.error();
      if (r->empty()) return NotFound("job");
      return ReadJob(*r, 0);
    });
  }

  Result<std::vector<int64_t>> UnfinishedJobs() override {
    return ex_->Read<std::vector<int64_t>>(
        Consistency::kPrimary, [&](Conn& c) -> Result<std::vector<int64_t>> {
          auto r =
              c.Exec("unfinished_jobs",
                     "SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY id", {});
          if (!r.ok()) return r.error();
          std::vector<int64_t> out;
          for (int i = 0; i < r->size(); ++i) out.push_back(r->Int(i, 0));
          return out;
        });
  }

  Result<bool> MarkJobRunning(int64_t id) override {
    return Changed("job_running",
                   "UPDATE jobs SET status = 'running', attempts = attempts + 1"
                   " WHERE id = $1 AND status IN ('queued', 'running')",
                   {P(id)});
  }

  Status FinishJob(int64_t job_id, const PhotoVersion& v, int64_t now_ms) override {
    return ex_->WriteTx<Unit>([&](Conn& c) -> Result<Unit> {
      // A job redelivered after a crash may finish twice; the version is written once.
      auto ins = c.Exec("add_version",
                        "INSERT INTO photo_versions(photo_id, job_id, media_key, width, height)"
                        " SELECT photo_id, id, $2, $3, $4 FROM jobs WHERE id = $1"
                        " ON CONFLICT DO NOTHING",
                        {P(job_id), P(v.media_key), P(int64_t{v.width}), P(int64_t{v.height})});
      if (!ins.ok()) return ins.error();
      auto upd = c.Exec("finish_job",
                        "UPDATE jobs SET status = 'done', result_key = $2, finished_ms = $3,"
                        " error = '' WHERE id = $1",
                        {P(job_id), P(v.media_key), P(now_ms)});
      if (!upd.ok()) return upd.error();
      if (upd->affected() == 0) return NotFound("job");
      return Unit{};
    });
  }

  Status FailJob(int64_t job_id, std::string_view error, int64_t now_ms) override {
    return ex_->Run("fail_job",
                    "UPDATE jobs SET status = 'failed', error = $2, finished_ms = $3"
                    " WHERE id = $1 AND status <> 'done'",
                    {P(job_id), P(error), P(now_ms)});
  }

  Result<bool> FailQueuedJob(int64_t job_id, std::string_view error, int64_t now_ms) override {
    return Changed("fail_queued_job",
                   "UPDATE jobs SET status = 'failed', error = $2, finished_ms = $3"
                   " WHERE id = $1 AND status = 'queued'",
                   {P(job_id), P(error), P(now_ms)});
  }

 private:
  // A conditional write: whether it changed a row.
  Result<bool> Changed(const char* name, const char* sql, std::initializer_list<pg::Param> params) {
    return ex_->Write<bool>([&](Conn& c) -> Result<bool> {
      auto r = c.Exec(name, sql, params);
      if (!r.ok()) return r.error();
      return r->affected() > 0;
    });
  }

  std::shared_ptr<PgExecutor> ex_;
};

}  // namespace

std::unique_ptr<JobStore> MakePgJobStore(std::shared_ptr<PgExecutor> executor) {
  return std::make_unique<PgJobs>(std::move(executor));
}

}  // namespace millions::data
