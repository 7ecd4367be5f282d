// Throttle: log-in and sign-up throttling (docs/security.md).
// - Log-in, per (account, source address): a source's failed log-ins for one account are
//   counted, and forgotten `login_window` after its last failure. From the `login_max_failures`th
//   on, the source is blocked for that account: `login_backoff`, doubling with each further
//   failure, up to `login_max_backoff`. A blocked attempt is answered 429 with Retry-After before
//   its password is looked at, right or wrong (no hint, and no argon2id work). A success forgets
//   the source's failures.
// - Per account, across sources: failures within `login_window` mark the account under attack
//   past `attack_failures`. That never blocks a source: it lowers every source's allowance to
//   `attack_max_failures` and delays each failed answer by `attack_delay`. An owner's correct
//   password from an address that has not failed still logs in at once.
// - Sign-up, per source: at most `signup_per_minute` in a fixed minute.
// The counters live in a cache::Counters store shared by every web node (the cache nodes, or in
// `millions single` this process); see cache/counters.h for what happens when it is down.
// The policy (LoginBackoff) is a pure function; the clock is the store's (Env).
// Thread-safety: every method may be called from any thread; they block on the store: call them
// on a BlockingPool. Ownership: owns its store; borrows the metrics registry.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache/counters.h"
#include "core/http.h"
#include "core/metrics.h"

namespace millions::app {

struct ThrottleOptions {
  bool enabled = true;
  int login_max_failures = 5;
  std::chrono::milliseconds login_window{60'000};
  std::chrono::milliseconds login_backoff{60'000};
  std::chrono::milliseconds login_max_backoff{900'000};
  int attack_failures = 100;  // 0: never under attack
  int attack_max_failures = 1;
  std::chrono::milliseconds attack_delay{1000};
  int signup_per_minute = 20;  // 0: no limit
};

// How long a source is blocked after its `failures`th failure for one account (0: not blocked).
std::chrono::milliseconds LoginBackoff(const ThrottleOptions& o, int64_t failures,
                                       bool under_attack);

// The client's address: the X-Forwarded-For written by a balancer when the request comes from
// one of `trusted` (the topology's balancers), else the peer's address. Our balancer writes one
// address and drops what clients send; from a chain, the last (nearest) entry is taken.
std::string ClientAddress(const http::Request& req, const std::vector<std::string>& trusted);

struct LoginCheck {
  int64_t retry_after_s = 0;  // > 0: blocked, answer 429
  bool under_attack = false;
};

class Throttle {
 public:
  Throttle(ThrottleOptions o, std::shared_ptr<cache::Counters> store, metrics::Registry& metrics);
  // Before a log-in's password is verified.
  LoginCheck CheckLogin(std::string_view handle, std::string_view source);
  // After a wrong password (or unknown handle): the delay to add to the 401.
  std::chrono::milliseconds LoginFailed(std::string_view handle, std::string_view source,
                                        bool under_attack);
  void LoginSucceeded(std::string_view handle, std::string_view source);
  // Before a sign-up: 0 to go ahead, else the seconds to answer in Retry-After with 429.
  int64_t CheckSignUp(std::string_view source);
  const ThrottleOptions& options() const { return opt_; }

 private:
  ThrottleOptions opt_;
  std::shared_ptr<cache::Counters> store_;
  metrics::Counter& throttled_login_;
  metrics::Counter& throttled_signup_;
  metrics::Counter& failures_;
};

}  // namespace millions::app
