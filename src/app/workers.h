// Workers: threads that take edit jobs from the queue and run them through the Service.
// Retries back off exponentially; a job that keeps failing is marked failed, never dropped.
// Thread-safety: Start/Stop from one thread. Ownership: owns its threads; borrows the rest.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

#include "app/service.h"
#include "core/metrics.h"
#include "queue/job_queue.h"

namespace millions::app {

class Workers {
 public:
  Workers(Service& service, queue::JobQueue& queue, metrics::Registry& metrics, int threads);
  ~Workers();
  void Start();
  // Finishes the jobs in hand, then joins. The queue must be closed first or together.
  void Stop();

 private:
  void Loop();
  Service& svc_;
  queue::JobQueue& queue_;
  metrics::Registry& metrics_;
  int count_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace millions::app
