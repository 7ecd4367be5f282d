// The queue in PostgreSQL (stage 2, until NATS JetStream lands): one row per queued job,
// claimed with FOR UPDATE SKIP LOCKED so that workers on many web nodes never take the same
// job, and leased for a while so that a job held by a node that died is delivered again.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "core/pg.h"
#include "queue/job_queue.h"

namespace millions::queue {
namespace {

using pg::P;

class PgQueue : public JobQueue {
 public:
  PgQueue(pg::Options o, Env& env, std::chrono::milliseconds lease)
      : pool_(std::move(o)), env_(env), lease_(lease) {
    Status st = pool_.Tx<Unit>([](pg::Conn& c) -> Result<Unit> {
      if (Status s = c.Simple("SELECT pg_advisory_xact_lock(7243121)"); !s.ok()) return s.error();
      if (Status s = c.Simple("CREATE TABLE IF NOT EXISTS job_queue(job_id BIGINT PRIMARY KEY,"
                              " attempts BIGINT NOT NULL DEFAULT 0, visible_ms BIGINT NOT NULL,"
                              " leased_until_ms BIGINT NOT NULL DEFAULT 0)");
          !s.ok())
        return s.error();
      return Unit{};
    });
    if (!st.ok()) throw std::runtime_error("creating the job queue: " + st.error().message);
  }

  Status Enqueue(int64_t job_id) override {
    Status st = Run("enqueue",
                    "INSERT INTO job_queue(job_id, visible_ms) VALUES($1, $2)"
                    " ON CONFLICT (job_id) DO NOTHING",
                    {P(job_id), P(env_.WallMillis())});
    if (st.ok()) cv_.notify_one();
    return st;
  }

  std::optional<Delivery> Dequeue(std::chrono::milliseconds wait) override {
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      if (closed_) return std::nullopt;
      if (auto d = TryClaim()) return d;
      std::unique_lock lock(mu_);
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline || closed_) return std::nullopt;
      // Jobs queued by other nodes are seen by polling; local ones wake us at once.
      cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(200)));
    }
  }

  Status Ack(int64_t job_id) override {
    return Run("ack", "DELETE FROM job_queue WHERE job_id = $1", {P(job_id)});
  }

  Status Retry(int64_t job_id, std::chrono::milliseconds delay) override {
    return Run("retry",
               "UPDATE job_queue SET leased_until_ms = 0, visible_ms = $2 WHERE job_id = $1",
               {P(job_id), P(env_.WallMillis() + delay.count())});
  }

  int64_t Backlog() override {
    auto lease = pool_.Acquire();
    if (!lease.ok()) return -1;
    auto r = (*lease)->Exec("backlog", "SELECT COUNT(*) FROM job_queue", {});
    return r.ok() ? r->Int(0, 0) : -1;
  }

  void Close() override {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  Status Run(const char* name, const char* sql, std::initializer_list<pg::Param> params) {
    auto lease = pool_.Acquire();
    if (!lease.ok()) return lease.error();
    auto r = (*lease)->Exec(name, sql, params);
    return r.ok() ? Ok() : Status(r.error());
  }

  std::optional<Delivery> TryClaim() {
    auto lease = pool_.Acquire();
    if (!lease.ok()) return std::nullopt;
    int64_t now = env_.WallMillis();
    auto r = (*lease)->Exec(
        "claim",
        "UPDATE job_queue SET leased_until_ms = $2, attempts = attempts + 1 WHERE job_id = ("
        " SELECT job_id FROM job_queue WHERE visible_ms <= $1 AND leased_until_ms <= $1"
        " ORDER BY visible_ms, job_id FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING job_id, attempts",
        {P(now), P(now + lease_.count())});
    if (!r.ok() || r->empty()) return std::nullopt;
    return Delivery{r->Int(0, 0), static_cast<int>(r->Int(0, 1))};
  }

  pg::Pool pool_;
  Env& env_;
  std::chrono::milliseconds lease_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> closed_{false};
};

}  // namespace

std::unique_ptr<JobQueue> OpenPgQueue(const pg::Options& options, Env& env,
                                      std::chrono::milliseconds lease) {
  return std::make_unique<PgQueue>(options, env, lease);
}

}  // namespace millions::queue
