// The stage-1 queue: a SQLite table in WAL mode, with a condition variable so that idle workers
// wake on Enqueue rather than polling, and sleep exactly until a delayed retry is due.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "core/sqlite.h"
#include "queue/job_queue.h"

namespace millions::queue {
namespace {

using sqlite::Conn;
using sqlite::Stmt;

class LocalQueue : public JobQueue {
 public:
  LocalQueue(const std::string& path, Env& env) : db_(path, 2), env_(env) {
    Status st = db_.Write<Unit>([](Conn& c) -> Result<Unit> {
      if (Status s = c.Exec("CREATE TABLE IF NOT EXISTS queue(job_id INTEGER PRIMARY KEY,"
                            " attempts INTEGER NOT NULL DEFAULT 0, visible_ms INTEGER NOT NULL,"
                            " leased INTEGER NOT NULL DEFAULT 0)");
          !s.ok())
        return s.error();
      // The previous process is gone: whatever it held is deliverable again.
      if (Status s = c.Exec("UPDATE queue SET leased = 0 WHERE leased = 1"); !s.ok())
        return s.error();
      return Unit{};
    });
    if (!st.ok()) throw std::runtime_error("opening queue " + path + ": " + st.error().message);
  }

  Status Enqueue(int64_t job_id) override {
    Status st = db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare("INSERT OR IGNORE INTO queue(job_id, visible_ms) VALUES(?, ?)");
      s.Bind(1, job_id).Bind(2, env_.WallMillis());
      if (Status r = s.Run(); !r.ok()) return r.error();
      return Unit{};
    });
    if (st.ok()) Changed();
    return st;
  }

  std::optional<Delivery> Dequeue(std::chrono::milliseconds wait) override {
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      if (closed_) return std::nullopt;
      uint64_t generation;
      {
        std::lock_guard lock(mu_);
        generation = generation_;
      }
      std::optional<int64_t> next_due_ms;
      auto got = TryClaim(&next_due_ms);
      if (got) return got;
      std::unique_lock lock(mu_);
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline || closed_) return std::nullopt;
      // Sleep until the earliest delayed retry is due, a change (Enqueue, Retry, Close) or the
      // deadline: no periodic wake-ups, so an idle worker costs nothing, and a lost notify
      // shows in the tests as a wait to the deadline. The generation closes the window between
      // the claim above and this wait.
      auto until = deadline;
      if (next_due_ms) {
        int64_t in_ms = std::max<int64_t>(0, *next_due_ms - env_.WallMillis()) + 1;
        until = std::min(until, now + std::chrono::milliseconds(in_ms));
      }
      cv_.wait_until(lock, until, [&] { return generation_ != generation || closed_; });
    }
  }

  Status Ack(int64_t job_id) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare("DELETE FROM queue WHERE job_id = ?");
      s.Bind(1, job_id);
      if (Status r = s.Run(); !r.ok()) return r.error();
      return Unit{};
    });
  }

  Status Retry(int64_t job_id, std::chrono::milliseconds delay) override {
    Status st = db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare("UPDATE queue SET leased = 0, visible_ms = ? WHERE job_id = ?");
      s.Bind(1, env_.WallMillis() + delay.count()).Bind(2, job_id);
      if (Status r = s.Run(); !r.ok()) return r.error();
      return Unit{};
    });
    if (st.ok()) Changed();
    return st;
  }

  int64_t Backlog() override {
    auto c = db_.Acquire();
    Stmt s = c->Prepare("SELECT COUNT(*) FROM queue");
    auto r = s.Step();
    return r.ok() && *r ? s.Int(0) : -1;
  }

  void Close() override {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  // Wakes every waiter to look again: a new job, or a retry that may be due sooner than the
  // time a waiter planned to sleep until.
  void Changed() {
    {
      std::lock_guard lock(mu_);
      ++generation_;
    }
    cv_.notify_all();
  }

  // Claims the next visible job; when there is none, sets *next_due_ms to the wall time at which
  // the earliest delayed job becomes visible (unset when nothing waits).
  std::optional<Delivery> TryClaim(std::optional<int64_t>* next_due_ms) {
    auto r = db_.Write<std::optional<Delivery>>([&](Conn& c) -> Result<std::optional<Delivery>> {
      Stmt s = c.Prepare(
          "UPDATE queue SET leased = 1, attempts = attempts + 1 WHERE job_id = ("
          " SELECT job_id FROM queue WHERE leased = 0 AND visible_ms <= ?"
          " ORDER BY visible_ms, job_id LIMIT 1) RETURNING job_id, attempts");
      s.Bind(1, env_.WallMillis());
      auto row = s.Step();
      if (!row.ok()) return row.error();
      if (!*row) {
        Stmt due = c.Prepare("SELECT MIN(visible_ms) FROM queue WHERE leased = 0");
        auto r = due.Step();
        if (r.ok() && *r && !due.IsNull(0)) *next_due_ms = due.Int(0);
        return std::optional<Delivery>();
      }
      Delivery d{s.Int(0), static_cast<int>(s.Int(1))};
      if (Status st = s.Run(); !st.ok()) return st.error();
      return std::optional<Delivery>(d);
    });
    return r.ok() ? *r : std::nullopt;
  }

  sqlite::Db db_;
  Env& env_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;  // guarded by mu_
  std::atomic<bool> closed_{false};
};

}  // namespace

std::unique_ptr<JobQueue> OpenLocalQueue(const std::string& path, Env& env) {
  return std::make_unique<LocalQueue>(path, env);
}

}  // namespace millions::queue
