// Business metrics on the in-process store, with a fake clock moved across UTC days.
#include "app/business.h"

#include <gtest/gtest.h>

#include <thread>

#include "app/business_test_util.h"

namespace millions::app {
namespace {

using std::chrono::milliseconds;
using testing::kDayMs;
using testing::MorningOf;
using testing::UserAt;

// Counts what reaches the store, and fails while told to.
class CountingTallies : public cache::Tallies {
 public:
  explicit CountingTallies(Env& env) : inner_(env, 1000) {}
  Status AddMembers(const std::string& key, const std::vector<int64_t>& m,
                    milliseconds ttl) override {
    if (down) return MakeError(Errc::kUnavailable, "cache_unavailable", "down");
    members += m.size();
    return inner_.AddMembers(key, m, ttl);
  }
  Status AddCount(const std::string& key, int64_t n, milliseconds ttl) override {
    if (down) return MakeError(Errc::kUnavailable, "cache_unavailable", "down");
    return inner_.AddCount(key, n, ttl);
  }
  Result<int64_t> Distinct(const std::string& key) override {
    if (down) return MakeError(Errc::kUnavailable, "cache_unavailable", "down");
    return inner_.Distinct(key);
  }
  Result<int64_t> Count(const std::string& key) override {
    if (down) return MakeError(Errc::kUnavailable, "cache_unavailable", "down");
    return inner_.Count(key);
  }
  bool down = false;
  size_t members = 0;

 private:
  cache::LocalTallies inner_;
};

const Business::Cohort* Find(const Business::Snapshot& s, int64_t day) {
  for (const auto& c : s.cohorts)
    if (c.day == day) return &c;
  return nullptr;
}

TEST(Business, CohortRetentionAcrossDays) {
  FakeEnv env;
  const int64_t d0 = 20'800;  // 2026-12-13
  env.SetWallMillis(MorningOf(d0));
  metrics::Registry registry;
  Business biz(env, std::make_shared<cache::LocalTallies>(env, 1000), registry);
  std::vector<int64_t> u;
  for (int i = 0; i < 4; ++i) u.push_back(UserAt(MorningOf(d0) - 1000 + i, i));
  for (int64_t id : u) biz.Event(BusinessEvent::kSignUp, id);
  biz.Event(BusinessEvent::kUpload, u[0]);
  biz.Flush();
  biz.Refresh();
  auto s = biz.snapshot();
  ASSERT_TRUE(s.valid);
  EXPECT_EQ(s.active_today, 4) << "sign-ups are active on their day";
  EXPECT_EQ(s.events_today[int(BusinessEvent::kSignUp)], 4);
  EXPECT_EQ(s.events_today[int(BusinessEvent::kUpload)], 1);
  ASSERT_NE(Find(s, d0), nullptr);
  EXPECT_EQ(Find(s, d0)->users, 4);
  EXPECT_EQ(Find(s, d0)->day1, -1) << "day 1 has not begun";

  // Day 1 (just after midnight UTC): two of the four come back; a new user signs up.
  env.SetWallMillis((d0 + 1) * kDayMs + 5);
  biz.Active(u[0]);
  biz.Active(u[1]);
  biz.Event(BusinessEvent::kSignUp, UserAt((d0 + 1) * kDayMs, 9));
  biz.Flush();
  // Day 2: the third comes back (neither day 1 nor day 7 for cohort 0).
  env.SetWallMillis(MorningOf(d0 + 2));
  biz.Active(u[2]);
  biz.Flush();
  biz.Refresh();
  s = biz.snapshot();
  EXPECT_EQ(s.active_today, 1);
  EXPECT_EQ(s.active_yesterday, 3) << "two of cohort 0 and the new user";
  EXPECT_EQ(s.events_today[int(BusinessEvent::kSignUp)], 0) << "a new day counts from 0";
  EXPECT_DOUBLE_EQ(Find(s, d0)->day1, 0.5);
  EXPECT_EQ(Find(s, d0)->day7, -1);
  EXPECT_DOUBLE_EQ(Find(s, d0 + 1)->day1, 0.0) << "cohort 1: nobody back on its day 1";

  // Day 7: one of cohort 0 comes back (just before midnight).
  env.SetWallMillis((d0 + 8) * kDayMs - 1);
  biz.Active(u[3]);
  biz.Flush();
  biz.Refresh();
  s = biz.snapshot();
  EXPECT_DOUBLE_EQ(Find(s, d0)->day1, 0.5);
  EXPECT_DOUBLE_EQ(Find(s, d0)->day7, 0.25);
  std::string text = registry.Render();
  EXPECT_NE(text.find("millions_business_retention_ratio{cohort_day=\"2026-12-13\",day=\"7\"} "
                      "0.25"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("millions_business_retention_ratio{cohort_day=\"2026-12-13\",day=\"1\"} "
                      "0.5"),
            std::string::npos);
  EXPECT_NE(text.find("millions_business_cohort_users{cohort_day=\"2026-12-13\"} 4"),
            std::string::npos);
  EXPECT_NE(text.find("millions_business_events_total{kind=\"signup\"} 5"), std::string::npos);
  EXPECT_NE(text.find("millions_business_active_users{window=\"day\"} 1"), std::string::npos);

  // Day 8: the day-7 figure is final; five weeks on, every key has expired.
  env.SetWallMillis(MorningOf(d0 + 8));
  biz.Refresh();
  EXPECT_DOUBLE_EQ(Find(biz.snapshot(), d0)->day7, 0.25);
  env.Advance(milliseconds(36 * kDayMs));  // the store's expiry clock
  env.SetWallMillis(MorningOf(d0 + 8));    // the same day's figures, read again
  biz.Refresh();
  s = biz.snapshot();
  EXPECT_TRUE(s.cohorts.empty()) << "expired";
  EXPECT_EQ(s.active_yesterday, 0);
}

TEST(Business, EachUserIsSentOncePerDay) {
  FakeEnv env;
  env.SetWallMillis(MorningOf(20'800));
  metrics::Registry registry;
  auto store = std::make_shared<CountingTallies>(env);
  Business biz(env, store, registry);
  int64_t old_user = UserAt(MorningOf(20'000), 1);  // joined long ago: no cohort key
  for (int i = 0; i < 100; ++i) biz.Active(old_user);
  biz.Flush();
  EXPECT_EQ(store->members, 1u) << "100 requests, one member written";
  biz.Active(old_user);
  biz.Flush();
  EXPECT_EQ(store->members, 1u);
  env.Advance(milliseconds(kDayMs));
  biz.Active(old_user);
  biz.Flush();
  EXPECT_EQ(store->members, 2u) << "a new day, a new set";
}

TEST(Business, StoreOutageLosesNothingQueued) {
  FakeEnv env;
  env.SetWallMillis(MorningOf(20'800));
  metrics::Registry registry;
  auto store = std::make_shared<CountingTallies>(env);
  Business biz(env, store, registry);
  biz.Event(BusinessEvent::kSignUp, UserAt(MorningOf(20'800), 1));
  biz.Flush();
  biz.Refresh();
  store->down = true;
  biz.Event(BusinessEvent::kSignUp, UserAt(MorningOf(20'800), 2));
  biz.Flush();
  biz.Refresh();
  EXPECT_EQ(biz.snapshot().active_today, 1) << "the last snapshot stays while the store is down";
  EXPECT_EQ(registry.Render().find("millions_business_store_errors_total 0"), std::string::npos)
      << "failures counted";
  store->down = false;
  biz.Flush();
  biz.Refresh();
  auto s = biz.snapshot();
  EXPECT_EQ(s.active_today, 2) << "written at the next flush";
  EXPECT_EQ(s.events_today[int(BusinessEvent::kSignUp)], 2);
}

TEST(Business, BackgroundThreadFlushesAndRefreshesWhenScraped) {
  FakeEnv env;
  env.SetWallMillis(MorningOf(20'800));
  metrics::Registry registry;
  Business biz(env, std::make_shared<cache::LocalTallies>(env, 1000), registry,
               {.flush_interval = milliseconds(10), .min_refresh = milliseconds(10)});
  biz.Start();
  biz.Event(BusinessEvent::kFollow, UserAt(MorningOf(20'000), 1));
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text = registry.Render();  // a scrape: asks for a new snapshot
    if (text.find("millions_business_events_today{kind=\"follow\"} 1") != std::string::npos) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  biz.Stop();
  EXPECT_NE(text.find("millions_business_events_today{kind=\"follow\"} 1"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace millions::app
