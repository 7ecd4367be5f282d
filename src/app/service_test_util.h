// Test helpers for the Service and its Workers: a JobQueue held in memory whose publishes can
// be made to fail (after "delivering" or not), and a Service on a throw-away SQLite store whose
// job facet a test may wrap (to step in between two of a worker's store calls).
// Thread-safety: FakeQueue may be used from any thread; the rest from the test's thread.
// Ownership: ServiceHarness owns everything it builds and removes its directory.
#pragma once

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "app/service.h"
#include "data/facet_store.h"
#include "queue/job_queue.h"

namespace millions::app::testing {

class FakeQueue : public queue::JobQueue {
 public:
  // Called (outside the queue's lock) on each publish; its Status is the publish's. Default: OK.
  std::function<Status(int64_t job_id)> on_enqueue;

  Status Enqueue(int64_t job_id) override {
    {
      std::lock_guard lock(mu_);
      enqueued_.push_back(job_id);
    }
    return on_enqueue ? on_enqueue(job_id) : Ok();
  }
  // Hands `d` to the next Dequeue.
  void Deliver(queue::Delivery d) {
    {
      std::lock_guard lock(mu_);
      pending_.push_back(d);
    }
    cv_.notify_all();
  }
  std::optional<queue::Delivery> Dequeue(std::chrono::milliseconds wait) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait, [this] { return closed_ || !pending_.empty(); });
    if (closed_ || pending_.empty()) return std::nullopt;
    queue::Delivery d = pending_.front();
    pending_.pop_front();
    return d;
  }
  Status Ack(int64_t job_id) override { return Settle(&acked_, job_id); }
  Status Retry(int64_t job_id, std::chrono::milliseconds) override {
    return Settle(&retried_, job_id);
  }
  Status DeadLetter(int64_t job_id, std::string_view) override { return Settle(&dead_, job_id); }
  // What Holds answers; default: the queue holds nothing (every publish was lost).
  std::function<std::optional<bool>(int64_t job_id)> holds;
  std::optional<bool> Holds(int64_t job_id) override { return holds ? holds(job_id) : false; }
  int64_t Backlog() override { return 0; }
  void Close() override {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

  // Waits (bounded) until some delivery was acked, retried or dead-lettered; false on timeout.
  bool WaitSettled(std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, wait, [this] { return settled_ > 0; });
  }
  std::vector<int64_t> enqueued() { return Copy(enqueued_); }
  std::vector<int64_t> acked() { return Copy(acked_); }
  std::vector<int64_t> retried() { return Copy(retried_); }
  std::vector<int64_t> dead() { return Copy(dead_); }

 private:
  Status Settle(std::vector<int64_t>* into, int64_t job_id) {
    {
      std::lock_guard lock(mu_);
      into->push_back(job_id);
      ++settled_;
    }
    cv_.notify_all();
    return Ok();
  }
  std::vector<int64_t> Copy(const std::vector<int64_t>& v) {
    std::lock_guard lock(mu_);
    return v;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<queue::Delivery> pending_;
  std::vector<int64_t> enqueued_, acked_, retried_, dead_;
  int settled_ = 0;
  bool closed_ = false;
};

// A Service over a fresh SQLite file, an L1-only cache and a FakeQueue, with one photo
// (kPhoto, 64x64 PNG, owned by kOwner) to edit. Each facet of the store opens the file on its
// own, so that `wrap_jobs` can replace the job facet.
class ServiceHarness {
 public:
  static constexpr int64_t kOwner = 1;
  static constexpr int64_t kPhoto = 10;

  explicit ServiceHarness(
      const std::function<std::unique_ptr<data::JobStore>(std::unique_ptr<data::JobStore>)>&
          wrap_jobs = nullptr) {
    static int n = 0;
    dir_ = std::filesystem::temp_directory_path() /
           ("service_test_" + std::to_string(getpid()) + "_" + std::to_string(++n));
    std::filesystem::create_directories(dir_);
    const std::string path = (dir_ / "db.sqlite").string();
    data::Facets f;
    f.users = data::OpenSqliteStore(path, 2);
    f.photos = data::OpenSqliteStore(path, 2);
    f.sessions = data::OpenSqliteStore(path, 2);
    f.jobs = data::OpenSqliteStore(path, 2);
    if (wrap_jobs) f.jobs = wrap_jobs(std::move(f.jobs));
    f.new_id = [this](int shard) -> Result<int64_t> { return ids.Next(shard); };
    store = data::MakeFacetStore(std::move(f));
    cache = std::make_unique<cache::Tiered>(cache::TieredOptions{}, nullptr, env, metrics);
    service = std::make_unique<Service>(*store, *cache, queue, env, metrics, ServiceOptions{});
    data::PhotoRow p;
    p.id = kPhoto;
    p.owner_id = kOwner;
    p.media_key = "k.png";
    p.content_type = "image/png";
    p.width = 64;
    p.height = 64;
    p.created_ms = env.WallMillis();
    (void)store->CreatePhoto(p);
  }
  ~ServiceHarness() {
    service.reset();
    cache.reset();
    store.reset();
    std::filesystem::remove_all(dir_);
  }

  FakeEnv env;
  metrics::Registry metrics;
  data::IdGenerator ids{env, 0};
  FakeQueue queue;
  std::unique_ptr<data::Store> store;
  std::unique_ptr<cache::Tiered> cache;
  std::unique_ptr<Service> service;

 private:
  std::filesystem::path dir_;
};

}  // namespace millions::app::testing
