// ReshardWatch: the reshard in progress, as the runner shows it (docs/sharding.md, "Online
// resharding"; docs/metrics.md, Reshard): a thread of its own reads the reshard's lock and plan
// from etcd every `interval` and keeps the last reading, which `status --json` ("reshard"), the
// dashboard and the runner's /metrics (millions_reshard_*) read without touching etcd. Nothing
// here blocks the caller: the etcd reads (short timeouts) are on the watch's thread.
// Thread-safety: Json() and Collect() may be called from any thread while the watch runs.
// Ownership: owns its thread and etcd client; the thread ends with the object.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/metrics.h"
#include "data/reshard_etcd.h"
#include "data/reshard_plan.h"

namespace millions::ctl {

// What one reading found. `present` false: no plan was ever written.
struct ReshardView {
  bool present = false, running = false, done = false, readable = true;
  std::string holder;  // "pid P on HOST" while running
  int64_t from_version = 0, to_version = 0;
  int shards_total = 0, shards_switched = 0;
  std::map<std::string, int> states;  // moves by state
  int64_t users = 0, rows = 0;
  double rows_per_s = 0, eta_s = -1;
  int64_t pause_p50_ms = -1, pause_p99_ms = -1, pause_max_ms = -1;
  int64_t started_ms = 0, updated_ms = 0;
};

// Pure: the view of a plan (and its holder), as of `now_ms`.
ReshardView ViewOf(const data::ReshardPlan& plan,
                   const std::optional<data::ReshardLockHolder>& holder, int64_t now_ms);
boost::json::object ReshardViewJson(const ReshardView& v);
// millions_reshard_* (docs/metrics.md) of a view.
void AddReshardFamilies(metrics::Families* out, const ReshardView& v);

class ReshardWatch {
 public:
  ReshardWatch(data::EtcdOptions options, std::string deployment,
               std::chrono::milliseconds interval = std::chrono::milliseconds(2000));
  ~ReshardWatch();

  ReshardView Current() const;

 private:
  void Loop();

  std::unique_ptr<data::ReshardEtcd> etcd_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  ReshardView view_;
  std::thread thread_;
};

}  // namespace millions::ctl
