#include "app/business.h"

#include <algorithm>

#include "core/log.h"
#include "data/ids.h"

namespace millions::app {

using std::chrono::milliseconds;

const char* BusinessEventName(BusinessEvent e) {
  switch (e) {
    case BusinessEvent::kSignUp:
      return "signup";
    case BusinessEvent::kLogIn:
      return "login";
    case BusinessEvent::kUpload:
      return "upload";
    case BusinessEvent::kEdit:
      return "edit";
    case BusinessEvent::kFollow:
      return "follow";
  }
  return "other";
}

std::string Business::DayName(int64_t day) { return FormatRfc3339(day * 86'400'000).substr(0, 10); }

namespace {

std::string ActiveKey(int64_t day) { return "biz:active:" + Business::DayName(day); }
std::string CohortKey(int64_t day) { return "biz:cohort:" + Business::DayName(day); }
std::string BackKey(int64_t cohort, int after) {
  return "biz:back:" + Business::DayName(cohort) + ":" + std::to_string(after);
}
std::string EventKey(int64_t day, int e) {
  return "biz:events:" + Business::DayName(day) + ":" + BusinessEventName(BusinessEvent(e));
}

}  // namespace

Business::Business(Env& env, std::shared_ptr<cache::Tallies> store, metrics::Registry& metrics,
                   BusinessOptions options)
    : env_(env),
      store_(std::move(store)),
      opt_(options),
      errors_(metrics.GetCounter("millions_business_store_errors_total",
                                 "Business metrics' writes and reads the shared store failed.",
                                 {})),
      dropped_(metrics.GetCounter(
          "millions_business_dropped_total",
          "Business records dropped: the shared store failed for longer than the queue holds.",
          {})) {
  for (int e = 0; e < kBusinessEvents; ++e)
    events_[e] =
        &metrics.GetCounter("millions_business_events_total",
                            "Sign-ups, log-ins, uploads, edits and follows this node took.",
                            {{"kind", BusinessEventName(BusinessEvent(e))}});
  // Global figures from the last snapshot; a scrape asks for the next one.
  metrics.AddCollector([shared = shared_](metrics::Families* out) {
    shared->wanted = true;
    Snapshot s;
    {
      std::lock_guard lock(shared->mu);
      s = shared->snap;
    }
    if (!s.valid) return;
    auto active = metrics::AddGauge(
        out, "millions_business_active_users",
        "Distinct users with an authenticated request or a log-in in the UTC day (global).");
    active.Add({{"window", "day"}}, double(s.active_today));
    active.Add({{"window", "previous_day"}}, double(s.active_yesterday));
    auto today = metrics::AddGauge(out, "millions_business_events_today",
                                   "Events of each kind in the UTC day so far (global).");
    for (int e = 0; e < kBusinessEvents; ++e)
      today.Add({{"kind", BusinessEventName(BusinessEvent(e))}}, double(s.events_today[e]));
    auto users = metrics::AddGauge(out, "millions_business_cohort_users",
                                   "Users who signed up on the UTC day cohort_day (global).");
    auto ratio = metrics::AddGauge(
        out, "millions_business_retention_ratio",
        "Share of a sign-up cohort active `day` days after its sign-up day (global).");
    for (const Cohort& c : s.cohorts) {
      std::string name = DayName(c.day);
      users.Add({{"cohort_day", name}}, double(c.users));
      if (c.day1 >= 0) ratio.Add({{"cohort_day", name}, {"day", "1"}}, c.day1);
      if (c.day7 >= 0) ratio.Add({{"cohort_day", name}, {"day", "7"}}, c.day7);
    }
  });
}

Business::~Business() { Stop(); }

void Business::Active(int64_t user_id) {
  int64_t day = DayOf(env_.WallMillis());
  Stripe& s = stripes_[static_cast<uint64_t>(user_id) * 0x9E3779B97F4A7C15ull >> 60];
  {
    std::lock_guard lock(s.mu);
    if (s.day != day) {
      s.seen.clear();
      s.day = day;
    }
    // Full: forget, and send again (PFADD of a member already there changes nothing).
    if (s.seen.size() >= opt_.max_seen / stripes_.size()) s.seen.clear();
    if (!s.seen.insert(user_id).second) return;
  }
  NoteActive(user_id, day);
}

void Business::NoteActive(int64_t user_id, int64_t day) {
  int64_t cohort = DayOf(data::MillisOf(user_id));
  std::lock_guard lock(pending_mu_);
  AddMember(ActiveKey(day), user_id);
  if (day - cohort == 1) AddMember(BackKey(cohort, 1), user_id);
  if (day - cohort == 7) AddMember(BackKey(cohort, 7), user_id);
}

void Business::AddMember(const std::string& key, int64_t member) {
  if (pending_size_ >= opt_.max_pending) {
    dropped_.Inc();
    return;
  }
  pending_members_[key].push_back(member);
  ++pending_size_;
}

void Business::Event(BusinessEvent e, int64_t user_id) {
  events_[int(e)]->Inc();
  int64_t day = DayOf(env_.WallMillis());
  {
    std::lock_guard lock(pending_mu_);
    pending_counts_[EventKey(day, int(e))] += 1;
    if (e == BusinessEvent::kSignUp) AddMember(CohortKey(DayOf(data::MillisOf(user_id))), user_id);
  }
  Active(user_id);
}

void Business::Flush() {
  std::lock_guard flush_lock(flush_mu_);
  std::map<std::string, std::vector<int64_t>> members;
  std::map<std::string, int64_t> counts;
  {
    std::lock_guard lock(pending_mu_);
    members.swap(pending_members_);
    counts.swap(pending_counts_);
    pending_size_ = 0;
  }
  // What fails waits for the next flush (within the queue's bound): a cache node that is down
  // a few seconds loses nothing.
  std::map<std::string, std::vector<int64_t>> failed_members;
  std::map<std::string, int64_t> failed_counts;
  for (auto& [key, list] : members) {
    if (store_->AddMembers(key, list, opt_.ttl).ok()) continue;
    errors_.Inc();
    failed_members[key] = std::move(list);
  }
  for (auto& [key, n] : counts) {
    if (store_->AddCount(key, n, opt_.ttl).ok()) continue;
    errors_.Inc();
    failed_counts[key] = n;
  }
  if (failed_members.empty() && failed_counts.empty()) return;
  std::lock_guard lock(pending_mu_);
  for (auto& [key, list] : failed_members)
    for (int64_t m : list) AddMember(key, m);
  for (auto& [key, n] : failed_counts) pending_counts_[key] += n;
}

void Business::Refresh() {
  Snapshot s;
  s.day = DayOf(env_.WallMillis());
  s.at = env_.Now();
  auto fail = [this](const Error& e) {
    errors_.Inc();
    log::Debug("business metrics not refreshed", {{"error", e.message}});
  };
  auto distinct = [this](const std::string& key) { return store_->Distinct(key); };
  auto today = distinct(ActiveKey(s.day));
  auto yesterday = distinct(ActiveKey(s.day - 1));
  if (!today.ok()) return fail(today.error());
  if (!yesterday.ok()) return fail(yesterday.error());
  s.active_today = *today;
  s.active_yesterday = *yesterday;
  for (int e = 0; e < kBusinessEvents; ++e) {
    auto n = store_->Count(EventKey(s.day, e));
    if (!n.ok()) return fail(n.error());
    s.events_today[e] = *n;
  }
  for (int64_t c = s.day - opt_.cohort_days + 1; c <= s.day; ++c) {
    auto users = distinct(CohortKey(c));
    if (!users.ok()) return fail(users.error());
    if (*users == 0) continue;
    Cohort cohort{.day = c, .users = *users};
    // A HyperLogLog's estimate may put a few more back than joined: at most everyone.
    for (int after : {1, 7}) {
      if (s.day < c + after) continue;
      auto back = distinct(BackKey(c, after));
      if (!back.ok()) return fail(back.error());
      (after == 1 ? cohort.day1 : cohort.day7) = std::min(1.0, double(*back) / double(*users));
    }
    s.cohorts.push_back(cohort);
  }
  s.valid = true;
  std::lock_guard lock(shared_->mu);
  shared_->snap = std::move(s);
}

Business::Snapshot Business::snapshot() const {
  std::lock_guard lock(shared_->mu);
  return shared_->snap;
}

void Business::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Business::Stop() {
  {
    std::lock_guard lock(loop_mu_);
    stop_ = true;
  }
  loop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Business::Loop() {
  std::unique_lock lock(loop_mu_);
  while (!stop_) {
    loop_cv_.wait_for(lock, opt_.flush_interval, [this] { return stop_; });
    lock.unlock();
    Flush();  // also at stop: what a draining node noted is not lost
    auto now = std::chrono::steady_clock::now();
    // A scrape asked (or none has yet): a new snapshot, at most every min_refresh.
    if (shared_->wanted && now - refreshed_ >= opt_.min_refresh) {
      shared_->wanted = false;
      refreshed_ = now;
      Refresh();
    }
    lock.lock();
  }
}

}  // namespace millions::app
