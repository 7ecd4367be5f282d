#include "app/workers.h"

#include <chrono>

#include "core/log.h"

namespace millions::app {

Workers::Workers(Service& service, queue::JobQueue& queue, metrics::Registry& metrics, int threads)
    : svc_(service), queue_(queue), metrics_(metrics), count_(threads) {}

Workers::~Workers() { Stop(); }

void Workers::Start() {
  for (int i = 0; i < count_; ++i) threads_.emplace_back([this] { Loop(); });
}

void Workers::Stop() {
  stop_ = true;
  queue_.Close();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void Workers::Loop() {
  auto counter = [&](const char* status) -> metrics::Counter& {
    return metrics_.GetCounter("millions_jobs_total", "Edit jobs by outcome.",
                               {{"status", status}});
  };
  auto& duration =
      metrics_.GetHistogram("millions_job_duration_seconds", "Time to run one edit job.", {});
  while (!stop_) {
    auto d = queue_.Dequeue(std::chrono::milliseconds(1000));
    if (!d) continue;
    auto t0 = std::chrono::steady_clock::now();
    Service::JobOutcome out = svc_.ProcessJob(*d);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    duration.Observe(secs);
    switch (out) {
      case Service::JobOutcome::kDone:
      case Service::JobOutcome::kFailed: {
        const char* status = out == Service::JobOutcome::kDone ? "done" : "failed";
        counter(status).Inc();
        log::Info("job finished", {{"job_id", d->job_id},
                                   {"status", status},
                                   {"attempt", d->attempt},
                                   {"duration_ms", secs * 1000}});
        (void)queue_.Ack(d->job_id);
        break;
      }
      case Service::JobOutcome::kRetry: {
        counter("retried").Inc();
        auto delay = std::chrono::milliseconds(200 << std::min(d->attempt, 6));
        log::Warn(
            "job will be retried",
            {{"job_id", d->job_id}, {"attempt", d->attempt}, {"delay_ms", int64_t(delay.count())}});
        (void)queue_.Retry(d->job_id, delay);
        break;
      }
    }
  }
}

}  // namespace millions::app
