#include "ctl/reshard_watch.h"

#include <algorithm>
#include <vector>

#include "core/env.h"

namespace millions::ctl {
namespace json = boost::json;

ReshardView ViewOf(const data::ReshardPlan& plan,
                   const std::optional<data::ReshardLockHolder>& holder, int64_t now_ms) {
  ReshardView v;
  v.present = true;
  v.done = plan.done();
  v.running = holder.has_value();
  if (holder) v.holder = "pid " + std::to_string(holder->pid) + " on " + holder->host;
  v.from_version = plan.from.version;
  v.to_version = plan.to.version;
  v.started_ms = plan.started_ms;
  v.updated_ms = plan.updated_ms;
  const data::ReshardProgress p = data::Progress(plan, now_ms);
  v.shards_total = p.shards_total;
  v.shards_switched = p.shards_switched;
  v.users = p.users;
  v.rows = p.rows;
  v.rows_per_s = p.rows_per_s;
  v.eta_s = v.done ? 0 : p.eta_s;
  std::vector<int64_t> pauses;
  for (const auto& m : plan.moves) {
    ++v.states[std::string(data::MoveStateName(m.state))];
    if (m.pause_ms >= 0) pauses.push_back(m.pause_ms);
  }
  if (!pauses.empty()) {
    std::sort(pauses.begin(), pauses.end());
    v.pause_p50_ms = pauses[(pauses.size() - 1) / 2];
    v.pause_p99_ms = pauses[std::min(pauses.size() - 1, (pauses.size() * 99 + 99) / 100 - 1)];
    v.pause_max_ms = pauses.back();
  }
  return v;
}

json::object ReshardViewJson(const ReshardView& v) {
  json::object states;
  for (const auto& [s, n] : v.states) states[s] = n;
  return json::object{{"state", !v.readable ? "unknown"
                                : v.done    ? "done"
                                : v.running ? "running"
                                            : "stopped"},
                      {"holder", v.holder},
                      {"from_version", v.from_version},
                      {"to_version", v.to_version},
                      {"shards_total", v.shards_total},
                      {"shards_switched", v.shards_switched},
                      {"moves", std::move(states)},
                      {"users", v.users},
                      {"rows", v.rows},
                      {"rows_per_s", v.rows_per_s},
                      {"eta_s", v.eta_s},
                      {"pause_p50_ms", v.pause_p50_ms},
                      {"pause_p99_ms", v.pause_p99_ms},
                      {"pause_max_ms", v.pause_max_ms},
                      {"started_ms", v.started_ms},
                      {"updated_ms", v.updated_ms}};
}

void AddReshardFamilies(metrics::Families* out, const ReshardView& v) {
  if (!v.present) return;
  metrics::AddGauge(out, "millions_reshard_running",
                    "1 while a reshard holds the lock in etcd (docs/sharding.md)")
      .Add({}, v.running ? 1 : 0);
  auto moves = metrics::AddGauge(out, "millions_reshard_shards",
                                 "Logical shards of the last reshard's plan, by move state");
  for (const char* s :
       {"pending", "copying", "catching_up", "frozen", "verified", "switched", "cleaned"})
    moves.Add({{"state", s}}, v.states.count(s) ? v.states.at(s) : 0);
  metrics::AddGauge(out, "millions_reshard_users_moved",
                    "Users copied by the last reshard's moves so far")
      .Add({}, double(v.users));
  metrics::AddGauge(out, "millions_reshard_rows_moved",
                    "Rows copied and replayed by the last reshard's moves so far")
      .Add({}, double(v.rows));
  metrics::AddGauge(out, "millions_reshard_rows_per_second",
                    "The last reshard's rate: rows moved over its time so far")
      .Add({}, v.rows_per_s);
  metrics::AddGauge(out, "millions_reshard_eta_seconds",
                    "Seconds the last reshard still needs at its rate (-1: unknown, 0: done)")
      .Add({}, v.eta_s);
  auto pause = metrics::AddGauge(
      out, "millions_reshard_pause_ms",
      "Write pause per logical shard of the last reshard (freeze to the source given up), ms");
  if (v.pause_max_ms >= 0) {
    pause.Add({{"quantile", "0.5"}}, double(v.pause_p50_ms));
    pause.Add({{"quantile", "0.99"}}, double(v.pause_p99_ms));
    pause.Add({{"quantile", "1"}}, double(v.pause_max_ms));
  }
}

ReshardWatch::ReshardWatch(data::EtcdOptions options, std::string deployment,
                           std::chrono::milliseconds interval)
    : etcd_(std::make_unique<data::ReshardEtcd>(std::move(options), std::move(deployment))),
      interval_(interval),
      thread_([this] { Loop(); }) {}

ReshardWatch::~ReshardWatch() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

ReshardView ReshardWatch::Current() const {
  std::lock_guard lock(mu_);
  return view_;
}

void ReshardWatch::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    ReshardView v;
    auto plan = etcd_->ReadPlan();
    if (plan.ok() && *plan) {
      auto holder = etcd_->Holder();
      v = ViewOf(**plan, holder.ok() ? *holder : std::nullopt, Env::Default().WallMillis());
      v.readable = holder.ok();
    } else if (!plan.ok()) {
      v.readable = false;
    }
    lock.lock();
    if (plan.ok() || !view_.present)
      view_ = std::move(v);
    else
      view_.readable = false;  // keep the last reading, marked stale
    cv_.wait_for(lock, interval_, [this] { return stop_; });
  }
}

}  // namespace millions::ctl
