#include "core/periodic.h"

namespace millions::node {

Periodic::Periodic(std::chrono::milliseconds interval, std::function<void()> fn, First first)
    : fn_(std::move(fn)), thread_([this, interval, first] { Loop(interval, first); }) {}

Periodic::~Periodic() { Stop(); }

void Periodic::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Periodic::Loop(std::chrono::milliseconds interval, First first) {
  std::unique_lock<std::mutex> l(mu_);
  if (first == First::kAfterInterval && cv_.wait_for(l, interval, [this] { return stop_; })) return;
  while (!stop_) {
    l.unlock();
    fn_();
    l.lock();
    // Waits a whole interval after each call, however long the call took: checks never pile up.
    if (cv_.wait_for(l, interval, [this] { return stop_; })) return;
  }
}

}  // namespace millions::node
