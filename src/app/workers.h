// Workers: threads that take edit jobs (or feed fan-out jobs) from a queue and run them through
// the Service.
// Retries back off exponentially; a job that keeps failing is marked failed and dead-lettered,
// never dropped. While a job runs, a heartbeat tells the queue it is in progress (a long image
// is not handed to a second worker), and a reconciler publishes again any accepted job the
// queue has lost.
// Thread-safety: Start/Stop from one thread. Ownership: owns its threads; borrows the rest.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "app/service.h"
#include "core/metrics.h"
#include "queue/job_queue.h"

namespace millions::app {

struct WorkerOptions {
  int threads = 2;
  // Runs feed fan-out jobs (Service::ProcessFanout) instead of edit jobs; its metrics are
  // millions_fanout_jobs_total and millions_fanout_job_duration_seconds.
  bool fanout = false;
  // How often a job in hand is reported in progress; 0: never (the queue's lease is long).
  std::chrono::milliseconds progress_every{0};
  // How often unfinished jobs are checked against the queue, and how old one must be to count
  // as lost; 0: never (the queue cannot say what it holds: RecoverJobs at start-up instead).
  std::chrono::milliseconds reconcile_every{0};
  std::chrono::milliseconds reconcile_age{30'000};
};

class Workers {
 public:
  Workers(Service& service, queue::JobQueue& queue, metrics::Registry& metrics,
          WorkerOptions options);
  ~Workers();
  void Start();
  // Finishes the jobs in hand, then joins. Closes the queue.
  void Stop();
  // Jobs being run now.
  int Busy() const { return busy_.load(); }

 private:
  void Loop();
  void Heartbeat();
  void Reconcile();
  // Sleeps up to `d`; false once stopping.
  bool Sleep(std::chrono::milliseconds d);

  Service& svc_;
  queue::JobQueue& queue_;
  metrics::Registry& metrics_;
  WorkerOptions opt_;
  std::atomic<bool> stop_{false};
  std::atomic<int> busy_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::multiset<int64_t> in_hand_;  // mu_
  std::vector<std::thread> threads_;
};

}  // namespace millions::app
