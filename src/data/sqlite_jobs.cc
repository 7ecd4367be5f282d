// JobStore on SQLite: photo edit jobs (SQL only; connections in sqlite_executor.h).
#include "data/sql_common.h"
#include "data/sqlite_facets.h"

namespace millions::data {
namespace {

using sqlite::Conn;
using sqlite::Stmt;

JobRow ReadJob(const Stmt& s) {
  JobRow j;
  j.id = s.Int(0);
  j.photo_id = s.Int(1);
  j.owner_id = s.Int(2);
  j.status = s.Text(3);
  j.ops_json = s.Text(4);
  j.result_key = s.Text(5);
  j.error = s.Text(6);
  j.created_ms = s.Int(7);
  j.finished_ms = s.Int(8);
  j.attempts = static_cast<int>(s.Int(9));
  return j;
}

class SqliteJobs final : public JobStore {
 public:
  explicit SqliteJobs(std::shared_ptr<SqliteExecutor> ex) : ex_(std::move(ex)) {}

  Status CreateJob(const JobRow& j) override {
    return ex_->Run(
        "INSERT INTO jobs(id, photo_id, owner_id, status, ops, created_ms) VALUES(?,?,?,?,?,?)",
        [&](Stmt& s) {
          s.Bind(1, j.id).Bind(2, j.photo_id).Bind(3, j.owner_id).Bind(4, j.status);
          s.Bind(5, j.ops_json).Bind(6, j.created_ms);
        });
  }

  Result<JobRow> GetJob(int64_t id, Consistency) override {
    return ex_->Read([&](Conn& c) -> Result<JobRow> {
      Stmt s = c.Prepare(
          "SELECT id, photo_id, owner_id, status, ops, result_key, error, created_ms,"
          " finished_ms, attempts FROM jobs WHERE id = ?");
      s.Bind(1, id);
      auto r = s.Step();
      if (!r.ok()) return r.error();
      if (!*r) return NotFound("job");
      return ReadJob(s);
    });
  }

  Result<std::vector<int64_t>> UnfinishedJobs() override {
    return ex_->Read([&](Conn& c) -> Result<std::vector<int64_t>> {
      Stmt s = c.Prepare("SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY id");
      std::vector<int64_t> out;
      for (;;) {
        auto r = s.Step();
        if (!r.ok()) return r.error();
        if (!*r) return out;
        out.push_back(s.Int(0));
      }
    });
  }

  Result<bool> MarkJobRunning(int64_t id) override {
    return Changed(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1"
        " WHERE id = ? AND status IN ('queued', 'running') RETURNING 1",
        [&](Stmt& s) { s.Bind(1, id); });
  }

  Status FinishJob(int64_t job_id, const PhotoVersion& v, int64_t now_ms) override {
    return ex_->Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt job = c.Prepare("SELECT photo_id, status FROM jobs WHERE id = ?");
      job.Bind(1, job_id);
      auto r = job.Step();
      if (!r.ok()) return r.error();
      if (!*r) return NotFound("job");
      int64_t photo_id = job.Int(0);
      // A job redelivered after a crash may finish twice; the version is written once.
      Stmt ins = c.Prepare(
          "INSERT OR IGNORE INTO photo_versions(photo_id, job_id, media_key, width, height)"
          " VALUES(?,?,?,?,?)");
      ins.Bind(1, photo_id).Bind(2, job_id).Bind(3, v.media_key);
      ins.Bind(4, int64_t{v.width}).Bind(5, int64_t{v.height});
      if (Status st = ins.Run(); !st.ok()) return st.error();
      Stmt upd = c.Prepare(
          "UPDATE jobs SET status = 'done', result_key = ?, finished_ms = ?, error = ''"
          " WHERE id = ?");
      upd.Bind(1, v.media_key).Bind(2, now_ms).Bind(3, job_id);
      if (Status st = upd.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Status FailJob(int64_t job_id, std::string_view error, int64_t now_ms) override {
    return ex_->Run(
        "UPDATE jobs SET status = 'failed', error = ?, finished_ms = ?"
        " WHERE id = ? AND status <> 'done'",
        [&](Stmt& s) { s.Bind(1, error).Bind(2, now_ms).Bind(3, job_id); });
  }

  Result<bool> FailQueuedJob(int64_t job_id, std::string_view error, int64_t now_ms) override {
    return Changed(
        "UPDATE jobs SET status = 'failed', error = ?, finished_ms = ?"
        " WHERE id = ? AND status = 'queued' RETURNING 1",
        [&](Stmt& s) { s.Bind(1, error).Bind(2, now_ms).Bind(3, job_id); });
  }

 private:
  // A conditional write (its SQL ends in RETURNING): whether it changed a row.
  Result<bool> Changed(const char* sql, const std::function<void(Stmt&)>& bind) {
    return ex_->Write<bool>([&](Conn& c) -> Result<bool> {
      Stmt s = c.Prepare(sql);
      bind(s);
      auto row = s.Step();
      if (!row.ok()) return row.error();
      return *row;
    });
  }

  std::shared_ptr<SqliteExecutor> ex_;
};

}  // namespace

std::unique_ptr<JobStore> MakeSqliteJobStore(std::shared_ptr<SqliteExecutor> executor) {
  return std::make_unique<SqliteJobs>(std::move(executor));
}

}  // namespace millions::data
