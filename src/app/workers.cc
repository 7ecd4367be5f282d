#include "app/workers.h"

#include "core/log.h"

namespace millions::app {

using std::chrono::milliseconds;

Workers::Workers(Service& service, queue::JobQueue& queue, metrics::Registry& metrics,
                 WorkerOptions options)
    : svc_(service), queue_(queue), metrics_(metrics), opt_(options) {}

Workers::~Workers() { Stop(); }

void Workers::Start() {
  for (int i = 0; i < opt_.threads; ++i) threads_.emplace_back([this] { Loop(); });
  if (opt_.threads > 0 && opt_.progress_every.count() > 0)
    threads_.emplace_back([this] { Heartbeat(); });
  if (opt_.threads > 0 && opt_.reconcile_every.count() > 0)
    threads_.emplace_back([this] { Reconcile(); });
}

void Workers::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  queue_.Close();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

bool Workers::Sleep(milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_.load(); });
  return !stop_;
}

void Workers::Heartbeat() {
  while (Sleep(opt_.progress_every)) {
    std::vector<int64_t> ids;
    {
      std::lock_guard lock(mu_);
      ids.assign(in_hand_.begin(), in_hand_.end());
    }
    for (int64_t id : ids) (void)queue_.Progress(id);
  }
}

void Workers::Reconcile() {
  auto& lost = metrics_.GetCounter("millions_jobs_republished_total",
                                   "Accepted jobs the queue had lost, published again.", {});
  // Spread over the period so that several worker processes do not check at once.
  while (Sleep(opt_.reconcile_every)) {
    auto n = svc_.ReconcileJobs(opt_.reconcile_age);
    if (n.ok())
      lost.Inc(*n);
    else
      log::Warn("could not reconcile jobs with the queue", {{"error", n.error().message}});
  }
}

void Workers::Loop() {
  const std::string kind = opt_.fanout ? "fanout" : "edit";
  const std::string jobs = opt_.fanout ? "millions_fanout_jobs_total" : "millions_jobs_total";
  auto counter = [&](const char* status) -> metrics::Counter& {
    return metrics_.GetCounter(jobs, kind + " jobs by outcome.", {{"status", status}});
  };
  auto queue_counter = [&](const char* name, const char* help) -> metrics::Counter& {
    return metrics_.GetCounter(name, help, {{"kind", kind}});
  };
  auto& delivered = queue_counter("millions_jobs_delivered_total", "Deliveries taken.");
  auto& redelivered =
      queue_counter("millions_jobs_redelivered_total", "Deliveries after the first of a job.");
  auto& acked = queue_counter("millions_jobs_acked_total", "Jobs acknowledged as finished.");
  auto& dead = queue_counter("millions_jobs_dead_lettered_total",
                             "Jobs that will never succeed, moved to the dead letters.");
  auto& skipped = queue_counter("millions_jobs_skipped_total",
                                "Deliveries of jobs already finished, acked without running.");
  auto duration = [&](const std::string& op) -> metrics::Histogram& {
    if (opt_.fanout)
      return metrics_.GetHistogram("millions_fanout_job_duration_seconds",
                                   "Time to run one fan-out job.", {});
    return metrics_.GetHistogram("millions_job_duration_seconds",
                                 "Time to run one edit job, by operation (multi: several).",
                                 {{"op", op.empty() ? "unknown" : op}});
  };
  while (!stop_) {
    auto d = queue_.Dequeue(milliseconds(1000));
    if (!d) continue;
    delivered.Inc();
    if (d->attempt > 1) redelivered.Inc();
    {
      std::lock_guard lock(mu_);
      in_hand_.insert(d->job_id);
    }
    ++busy_;
    // The job's lines (and the store's, on this thread) carry the ids of the request that
    // made it.
    log::ScopedContext scope({d->request_id, d->trace_id});
    auto t0 = std::chrono::steady_clock::now();
    std::string error, op;
    Service::JobOutcome out =
        opt_.fanout ? svc_.ProcessFanout(*d, &error) : svc_.ProcessJob(*d, &error, &op);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    duration(op).Observe(secs);
    {
      std::lock_guard lock(mu_);
      in_hand_.erase(in_hand_.find(d->job_id));
    }
    --busy_;
    switch (out) {
      case Service::JobOutcome::kDone:
        counter("done").Inc();
        log::Info("job finished", {{"job_id", d->job_id},
                                   {"kind", kind},
                                   {"status", "done"},
                                   {"attempt", d->attempt},
                                   {"duration_ms", secs * 1000}});
        if (queue_.Ack(d->job_id).ok()) acked.Inc();
        if (!opt_.fanout) queue_.Announce(d->job_id);
        break;
      case Service::JobOutcome::kSkipped:
        log::Info("job skipped: already finished",
                  {{"job_id", d->job_id}, {"kind", kind}, {"attempt", d->attempt}});
        skipped.Inc();
        if (queue_.Ack(d->job_id).ok()) acked.Inc();
        // A run that finished the job may have stopped before it told the waiters.
        if (!opt_.fanout) queue_.Announce(d->job_id);
        break;
      case Service::JobOutcome::kFailed:
        counter("failed").Inc();
        log::Warn("job failed", {{"job_id", d->job_id},
                                 {"kind", kind},
                                 {"attempt", d->attempt},
                                 {"error", error},
                                 {"duration_ms", secs * 1000}});
        if (queue_.DeadLetter(d->job_id, error).ok()) dead.Inc();
        if (!opt_.fanout) queue_.Announce(d->job_id);
        break;
      case Service::JobOutcome::kRetry: {
        counter("retried").Inc();
        auto delay = milliseconds(200 << std::min(d->attempt, 6));
        log::Warn("job will be retried", {{"job_id", d->job_id},
                                          {"kind", kind},
                                          {"attempt", d->attempt},
                                          {"delay_ms", delay.count()}});
        (void)queue_.Retry(d->job_id, delay);
        break;
      }
    }
  }
}

}  // namespace millions::app
