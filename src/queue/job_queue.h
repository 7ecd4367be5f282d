// JobQueue: at-least-once delivery of edit jobs to workers. Stage 1 uses an in-process queue
// durable in its own SQLite file (OpenLocalQueue); a later stage puts NATS JetStream behind the
// same interface. The database's job row stays the source of truth: a delivery names a job,
// and workers make finishing a job idempotent.
// Thread-safety: every method may be called from any thread; Dequeue blocks (worker threads
// only, never an event loop). Ownership: the queue owns its storage.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/env.h"
#include "core/pg.h"
#include "core/result.h"

namespace millions::queue {

struct Delivery {
  int64_t job_id = 0;
  int attempt = 1;  // 1 on first delivery
};

class JobQueue {
 public:
  virtual ~JobQueue() = default;
  // Durable when it returns OK. Enqueueing a job that is already queued is a no-op.
  virtual Status Enqueue(int64_t job_id) = 0;
  // Waits up to `wait` for a job; the job stays leased to the caller until Ack or Retry (or a
  // restart, which makes every leased job deliverable again).
  virtual std::optional<Delivery> Dequeue(std::chrono::milliseconds wait) = 0;
  virtual Status Ack(int64_t job_id) = 0;
  // Makes the job deliverable again after `delay`.
  virtual Status Retry(int64_t job_id, std::chrono::milliseconds delay) = 0;
  // Jobs queued or leased.
  virtual int64_t Backlog() = 0;
  // Wakes every waiting Dequeue; later calls return nullopt at once.
  virtual void Close() = 0;
};

// Throws std::runtime_error at start-up when the file cannot be used.
std::unique_ptr<JobQueue> OpenLocalQueue(const std::string& path, Env& env);

// The queue as a PostgreSQL table shared by every web node. A job leased by a node is delivered
// again `lease` after its claim unless acked: a node that dies holding it loses nothing.
// Throws std::runtime_error at start-up when the table cannot be created.
std::unique_ptr<JobQueue> OpenPgQueue(const pg::Options& options, Env& env,
                                      std::chrono::milliseconds lease);

}  // namespace millions::queue
