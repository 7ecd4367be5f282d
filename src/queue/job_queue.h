// JobQueue: at-least-once delivery of edit jobs to workers. `millions single` uses an in-process
// queue durable in its own SQLite file (OpenLocalQueue); a topology without NATS a PostgreSQL
// table (OpenPgQueue); a topology with NATS a JetStream work-queue stream (OpenNatsQueue, see
// docs/queue.md). The database's job row stays the source of truth: a delivery names a job,
// and workers make finishing a job idempotent.
// Thread-safety: every method may be called from any thread; Dequeue blocks (worker threads
// only, never an event loop). Ownership: the queue owns its storage.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/pg.h"
#include "core/result.h"

namespace millions::queue {

struct Delivery {
  int64_t job_id = 0;
  int attempt = 1;  // 1 on first delivery
  // The queue will not deliver this job again (its delivery bound is reached): finish it or
  // fail it now, never ask for a retry.
  bool last = false;
  // The ids of the request that made the job (log.h's Context at Enqueue), so that the
  // worker's lines about it carry them; empty where the queue does not keep them (only the
  // NATS queue does, in message headers).
  std::string request_id, trace_id;
};

class JobQueue {
 public:
  virtual ~JobQueue() = default;
  // Durable when it returns OK. Enqueueing a job that is already queued is a no-op. The calling
  // thread's log context (log::Current) goes with the job where the queue can carry it.
  virtual Status Enqueue(int64_t job_id) = 0;
  // Waits up to `wait` for a job; the job stays leased to the caller until Ack or Retry (or a
  // restart, which makes every leased job deliverable again).
  virtual std::optional<Delivery> Dequeue(std::chrono::milliseconds wait) = 0;
  virtual Status Ack(int64_t job_id) = 0;
  // Makes the job deliverable again after `delay`.
  virtual Status Retry(int64_t job_id, std::chrono::milliseconds delay) = 0;
  // The job in hand is still being worked on (a long image): its lease starts again.
  virtual Status Progress(int64_t /*job_id*/) { return Ok(); }
  // The job will never succeed: it leaves the queue for good (and, where the queue keeps one,
  // is recorded in its dead-letter store with `reason`).
  virtual Status DeadLetter(int64_t job_id, std::string_view /*reason*/) { return Ack(job_id); }
  // Whether the queue still holds the job (waiting or in hand): a job the database accepted
  // that the queue does not hold was lost on its way in, and is published again. nullopt: the
  // queue cannot tell now.
  virtual std::optional<bool> Holds(int64_t /*job_id*/) { return std::nullopt; }
  // Tells the nodes waiting on the job (GET /api/jobs/{id}?wait_ms=) that it finished. Best
  // effort: a waiter that misses it answers at its own deadline. Default: this process' listener.
  virtual void Announce(int64_t job_id) {
    std::lock_guard lock(listen_mu_);
    if (listener_) listener_(job_id);
  }
  // Sets what is called (on any thread, quickly) when a job announced by any node finishes.
  // Once Listen(nullptr) has returned, the previous listener is not running and will not run.
  virtual void Listen(std::function<void(int64_t)> on_finished) {
    std::lock_guard lock(listen_mu_);
    listener_ = std::move(on_finished);
  }
  // Jobs queued or leased. Never blocks for long (a remote queue answers from a recent count).
  virtual int64_t Backlog() = 0;
  // Wakes every waiting Dequeue; later calls return nullopt at once.
  virtual void Close() = 0;

 private:
  std::mutex listen_mu_;
  std::function<void(int64_t)> listener_;
};

// Throws std::runtime_error at start-up when the file cannot be used.
std::unique_ptr<JobQueue> OpenLocalQueue(const std::string& path, Env& env);

// The queue as a PostgreSQL table shared by every web node. A job leased by a node is delivered
// again `lease` after its claim unless acked: a node that dies holding it loses nothing.
// Throws std::runtime_error at start-up when the table cannot be created.
std::unique_ptr<JobQueue> OpenPgQueue(const pg::Options& options, Env& env,
                                      std::chrono::milliseconds lease);

// JetStream (nats-server 2.9): a work-queue stream with one subject per job (so that the
// queue can answer Holds), deduplicated publishes (Nats-Msg-Id "job-<id>"), a durable pull
// consumer shared by every worker with explicit acks, AckWait, MaxDeliver and back-off, and a
// dead-letter stream. See docs/queue.md for what the server guarantees and what we add.
struct NatsOptions {
  std::vector<std::string> servers;  // "nats://host:port"
  std::string name = "millions";     // the connection's name in nats-server's /connz
  std::string stream = "MILLIONS_JOBS";
  std::string subject_prefix = "millions.jobs.edit";  // a job's subject: <prefix>.<job id>
  std::string dead_stream = "MILLIONS_DEAD";
  std::string dead_prefix = "millions.dead.edit";
  std::string done_prefix = "millions.jobs.done";  // core NATS: "job N finished" (Announce)
  std::string consumer = "workers";
  int replicas = 1;                            // stream replicas (a 3-node cluster: 3)
  std::chrono::milliseconds ack_wait{30'000};  // a job in hand without an ack or progress
  int max_deliver = 4;                         // deliveries before a job is given up
  std::chrono::milliseconds duplicate_window{120'000};
  std::chrono::milliseconds request_timeout{5'000};  // a publish or an API call
  // The server's user and password (docs/credentials.md); no password: none sent.
  std::string user, password;
};

// Connects (retrying in the background while the servers are down; operations fail with 503
// until then). Never throws for an unreachable server: the stream and the consumer are made
// on first use.
std::unique_ptr<JobQueue> OpenNatsQueue(const NatsOptions& options);

}  // namespace millions::queue
