#include "app/throttle.h"

#include <algorithm>

#include "core/log.h"

namespace millions::app {

using std::chrono::milliseconds;

namespace {

// Keys never collide with the cache's ("u:1", "s:HASH"...): they start with "th:". A handle is
// at most 30 characters of [a-z0-9_] once valid; an invalid one is cut so keys stay small.
std::string Key(std::string_view kind, std::string_view handle, std::string_view source) {
  std::string k = "th:";
  k += kind;
  k += ':';
  k += handle.substr(0, 64);
  if (!source.empty()) {
    k += '|';
    k += source.substr(0, 64);
  }
  return k;
}

int64_t CeilSeconds(int64_t ms) { return std::max<int64_t>(1, (ms + 999) / 1000); }

}  // namespace

milliseconds LoginBackoff(const ThrottleOptions& o, int64_t failures, bool under_attack) {
  int64_t allowed =
      under_attack ? std::min(o.attack_max_failures, o.login_max_failures) : o.login_max_failures;
  if (failures < allowed) return milliseconds(0);
  int64_t doublings = std::min<int64_t>(failures - allowed, 30);
  int64_t ms = o.login_backoff.count();
  for (int64_t i = 0; i < doublings && ms < o.login_max_backoff.count(); ++i) ms *= 2;
  return milliseconds(std::min(ms, o.login_max_backoff.count()));
}

std::string ClientAddress(const http::Request& req, const std::vector<std::string>& trusted) {
  if (std::find(trusted.begin(), trusted.end(), req.remote_addr) == trusted.end())
    return req.remote_addr;
  auto xff = req.header("x-forwarded-for");
  if (!xff) return req.remote_addr;
  std::string_view v = *xff;
  if (size_t comma = v.rfind(','); comma != std::string_view::npos) v = v.substr(comma + 1);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty() || v.size() > 64) return req.remote_addr;
  return std::string(v);
}

Throttle::Throttle(ThrottleOptions o, std::shared_ptr<cache::Counters> store,
                   metrics::Registry& metrics)
    : opt_(o),
      store_(std::move(store)),
      throttled_login_(metrics.GetCounter("millions_auth_throttled_total",
                                          "Log-ins and sign-ups refused with 429 by the throttle.",
                                          {{"kind", "login"}})),
      throttled_signup_(metrics.GetCounter("millions_auth_throttled_total",
                                           "Log-ins and sign-ups refused with 429 by the throttle.",
                                           {{"kind", "signup"}})),
      failures_(metrics.GetCounter("millions_auth_login_failures_total",
                                   "Log-ins refused for a wrong handle or password.", {})) {}

LoginCheck Throttle::CheckLogin(std::string_view handle, std::string_view source) {
  LoginCheck out;
  if (!opt_.enabled) return out;
  // A store that fails here (both tiers) lets the attempt through: argon2id still bounds it.
  auto left = store_->Remaining(Key("lb", handle, source));
  if (left.ok() && *left > 0) {
    out.retry_after_s = CeilSeconds(*left);
    throttled_login_.Inc();
    return out;
  }
  if (opt_.attack_failures > 0) {
    auto n = store_->Value(Key("la", handle, ""));
    out.under_attack = n.ok() && *n >= opt_.attack_failures;
  }
  return out;
}

milliseconds Throttle::LoginFailed(std::string_view handle, std::string_view source,
                                   bool under_attack) {
  failures_.Inc();
  if (!opt_.enabled) return milliseconds(0);
  std::string fails = Key("lf", handle, source);
  auto n = store_->Increment(fails, opt_.login_window, true);
  if (opt_.attack_failures > 0) {
    auto total = store_->Increment(Key("la", handle, ""), opt_.login_window, true);
    if (total.ok() && *total == opt_.attack_failures)
      log::Warn("log-in failures for one account from many sources: slowing its log-ins",
                {{"failures", *total}});
    under_attack = under_attack || (total.ok() && *total >= opt_.attack_failures);
  }
  if (n.ok()) {
    milliseconds block = LoginBackoff(opt_, *n, under_attack);
    if (block.count() > 0) {
      (void)store_->Mark(Key("lb", handle, source), block);
      // The count outlives the block, so the next failure after it doubles the back-off.
      (void)store_->Expire(fails, block + opt_.login_window);
    }
  }
  return under_attack ? opt_.attack_delay : milliseconds(0);
}

void Throttle::LoginSucceeded(std::string_view handle, std::string_view source) {
  if (!opt_.enabled) return;
  (void)store_->Remove(Key("lf", handle, source));
}

int64_t Throttle::CheckSignUp(std::string_view source) {
  if (!opt_.enabled || opt_.signup_per_minute <= 0) return 0;
  std::string key = Key("su", source, "");
  auto n = store_->Increment(key, milliseconds(60'000), false);
  if (!n.ok() || *n <= opt_.signup_per_minute) return 0;
  throttled_signup_.Inc();
  auto left = store_->Remaining(key);
  return CeilSeconds(left.ok() ? *left : 60'000);
}

}  // namespace millions::app
