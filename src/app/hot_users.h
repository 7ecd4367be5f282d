// HotUsers: whose data is read most on this web node (issue 15's celebrities), counted with the
// Space-Saving top-k sketch (Metwally, Agrawal and El Abbadi, 2005): `capacity` counters find
// every user with more than 1/capacity of the reads in a window, with each count overestimated
// by at most its recorded error. Reads are counted per window of `window`; Top() answers from
// the last complete window, so an operator sees requests/s of the hottest users, not a total that
// only grows. Exported as millions_hot_user_requests_per_second{user} (the top 10,
// docs/metrics.md). Thread-safety: Note and Top may run on any thread. Notes go to one of a few
// stripes by the calling thread, each with its own mutex, so two io threads never wait for each
// other; Top locks each stripe in turn. Ownership: borrows the Env, which must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/env.h"
#include "core/metrics.h"

namespace millions::app {

struct HotUser {
  int64_t user_id = 0;
  double per_second = 0;  // the estimate: reads in the window over the window's length
  double error = 0;       // the estimate's most overstatement, in the same unit
};

class HotUsers {
 public:
  explicit HotUsers(Env& env, int capacity = 64,
                    std::chrono::milliseconds window = std::chrono::seconds(10));
  ~HotUsers();
  HotUsers(const HotUsers&) = delete;
  HotUsers& operator=(const HotUsers&) = delete;

  // One read of this user's data (profile, photos, follow lists).
  void Note(int64_t user_id);
  // The `k` hottest users of the last complete window, hottest first. Empty before a window has
  // ended, or when the last one saw no reads.
  std::vector<HotUser> Top(int k) const;
  // Registers the collector of millions_hot_user_requests_per_second (the top 10); it reports
  // nothing once `hot` is gone.
  static void Export(std::shared_ptr<const HotUsers> hot, metrics::Registry& registry);

 private:
  struct Stripe;
  Env& env_;
  std::chrono::milliseconds window_;
  std::vector<std::unique_ptr<Stripe>> stripes_;
};

}  // namespace millions::app
