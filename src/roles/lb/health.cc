#include "roles/lb/health.h"

#include <algorithm>

namespace millions::lb {

BackendHealth::BackendHealth(HealthOptions options, Env& env, std::shared_ptr<BackendStats> stats)
    : opt_(options), env_(env), stats_(std::move(stats)) {
  std::lock_guard lock(mu_);
  Publish();
}

void BackendHealth::OnCheck(bool ok) {
  std::lock_guard lock(mu_);
  if (ok) {
    check_streak_ = std::max(check_streak_, 0) + 1;
    if (!checked_up_ && check_streak_ >= opt_.rise) checked_up_ = true;
  } else {
    check_streak_ = std::min(check_streak_, 0) - 1;
    if (checked_up_ && -check_streak_ >= opt_.fall) checked_up_ = false;
  }
  Publish();
}

void BackendHealth::OnRequest(bool failed) {
  if (!failed) {
    // The common case takes no lock.
    if (failures_.load(std::memory_order_relaxed) != 0)
      failures_.store(0, std::memory_order_relaxed);
    return;
  }
  std::lock_guard lock(mu_);
  if (failures_.fetch_add(1) + 1 < opt_.consecutive_failures) return;
  failures_ = 0;
  auto now = env_.Now();
  if (now < ejected_until_) return;  // already out
  // Each ejection lasts twice the last, up to the cap.
  auto d = opt_.base_ejection * (1 << std::min(ejections_, 16));
  ejected_until_ = now + std::min<std::chrono::milliseconds>(d, opt_.max_ejection);
  ++ejections_;
  Publish();
}

void BackendHealth::Tick() {
  std::lock_guard lock(mu_);
  Publish();
}

bool BackendHealth::up() const {
  std::lock_guard lock(mu_);
  return checked_up_ && env_.Now() >= ejected_until_;
}

int BackendHealth::ejections() const {
  std::lock_guard lock(mu_);
  return ejections_;
}

void BackendHealth::Publish() {
  auto now = env_.Now();
  bool healthy = checked_up_ && now >= ejected_until_;
  if (healthy && !was_healthy_) back_since_ = now;  // slow start from here
  was_healthy_ = healthy;
  double factor = 1.0;
  if (healthy && back_since_ && opt_.slow_start.count() > 0) {
    double t = std::chrono::duration<double>(now - *back_since_).count() /
               std::chrono::duration<double>(opt_.slow_start).count();
    factor = std::clamp(t, 0.0, 1.0);
  }
  stats_->healthy.store(healthy, std::memory_order_relaxed);
  stats_->weight_factor.store(factor, std::memory_order_relaxed);
}

}  // namespace millions::lb
