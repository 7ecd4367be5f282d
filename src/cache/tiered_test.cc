// Tiered cache logic against a fake L2 that keeps Redis' lease semantics on a fake clock.
#include "cache/tiered.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>

namespace millions::cache {
namespace {

using std::chrono::milliseconds;

// The semantics of RedisL2 (l2.cc) in memory: values and leases with expiry on the Env's clock.
class FakeL2 : public L2 {
 public:
  explicit FakeL2(FakeEnv& env) : env_(env) {}
  L2Lookup Get(const std::string& key) override {
    std::lock_guard lock(mu_);
    L2Lookup out;
    if (down) return out;
    if (Live(values_, key)) {
      out.kind = L2Lookup::Kind::kHit;
      out.value = values_[key].first;
      return out;
    }
    out.recent_write = Live(markers_, key);
    if (Live(leases_, key)) {
      out.kind = L2Lookup::Kind::kWait;
      return out;
    }
    out.kind = L2Lookup::Kind::kLease;
    out.token = "t" + std::to_string(++next_);
    leases_[key] = {out.token, env_.Now() + lease};
    return out;
  }
  std::string TryLease(const std::string& key, const std::string& seen) override {
    std::lock_guard lock(mu_);
    if (!Live(values_, key) || values_[key].first.rfind(seen, 0) != 0) return "";
    if (Live(leases_, key)) return "";
    std::string t = "t" + std::to_string(++next_);
    leases_[key] = {t, env_.Now() + lease};
    return t;
  }
  bool Fill(const std::string& key, const std::string& token, const std::string& value,
            milliseconds ttl) override {
    std::lock_guard lock(mu_);
    if (!Live(leases_, key) || leases_[key].first != token) return false;
    values_[key] = {value, env_.Now() + ttl};
    leases_.erase(key);
    ++fills;
    return true;
  }
  void Release(const std::string& key, const std::string& token) override {
    std::lock_guard lock(mu_);
    if (Live(leases_, key) && leases_[key].first == token) leases_.erase(key);
  }
  void Delete(const std::vector<std::string>& keys) override {
    std::lock_guard lock(mu_);
    for (const auto& k : keys) {
      values_.erase(k);
      leases_.erase(k);
      markers_[k] = {"1", env_.Now() + milliseconds(2000)};
    }
  }
  void Publish(const std::vector<std::string>& keys) override {
    for (auto* t : subscribers) t->OnBroadcast(keys);
  }
  std::vector<L2NodeStats> Stats() const override { return stats; }
  // Test hook: a value as stored (to age it).
  void Expire(const std::string& key) {
    std::lock_guard lock(mu_);
    values_.erase(key);
  }

  std::vector<Tiered*> subscribers;
  milliseconds lease{2000};
  bool down = false;
  int fills = 0;
  std::vector<L2NodeStats> stats;

 private:
  using Entry = std::pair<std::string, std::chrono::steady_clock::time_point>;
  bool Live(std::map<std::string, Entry>& m, const std::string& k) {
    auto it = m.find(k);
    if (it == m.end()) return false;
    if (it->second.second <= env_.Now()) {
      m.erase(it);
      return false;
    }
    return true;
  }
  FakeEnv& env_;
  std::mutex mu_;
  std::map<std::string, Entry> values_, leases_, markers_;
  int next_ = 0;
};

// The L2 is shared between "nodes": each Tiered owns a forwarding handle to it.
class SharedL2 : public L2 {
 public:
  explicit SharedL2(FakeL2& l2) : l2_(l2) {}
  L2Lookup Get(const std::string& k) override { return l2_.Get(k); }
  std::string TryLease(const std::string& k, const std::string& seen) override {
    return l2_.TryLease(k, seen);
  }
  bool Fill(const std::string& k, const std::string& t, const std::string& v,
            milliseconds ttl) override {
    return l2_.Fill(k, t, v, ttl);
  }
  void Release(const std::string& k, const std::string& t) override { l2_.Release(k, t); }
  void Delete(const std::vector<std::string>& k) override { l2_.Delete(k); }
  void Publish(const std::vector<std::string>& k) override { l2_.Publish(k); }
  std::vector<L2NodeStats> Stats() const override { return l2_.Stats(); }

 private:
  FakeL2& l2_;
};

struct Fixture : ::testing::Test {
  FakeEnv env;
  metrics::Registry registry;
  FakeL2 shared{env};
  std::function<void()> on_sleep;  // runs at each lease-wait sleep, after the clock moves

  TieredOptions Options() {
    TieredOptions o;
    o.hot_key_reads_per_s = 0;
    o.ttl_jitter = 0;
    o.early_expiry_beta = 0;
    o.sleep = [this](milliseconds d) {
      env.Advance(d);
      if (on_sleep) on_sleep();
    };
    o.random = [] { return 0.5; };
    return o;
  }
  std::unique_ptr<Tiered> Node(TieredOptions o) {
    auto t = std::make_unique<Tiered>(o, std::make_unique<SharedL2>(shared), env, registry);
    shared.subscribers.push_back(t.get());
    return t;
  }
  double Metric(const std::string& series) {
    std::string text = registry.Render();
    auto at = text.find("\n" + series + " ");
    return at == std::string::npos ? 0 : std::stod(text.substr(at + series.size() + 2));
  }
};

TEST_F(Fixture, SingleFlightLoadsOnceForConcurrentMisses) {
  Tiered t(Options(), nullptr, env, registry);
  std::atomic<int> loads{0};
  std::mutex gate;
  gate.lock();  // the loader holds until every reader has arrived
  auto load = [&](bool) -> Result<std::string> {
    ++loads;
    std::lock_guard g(gate);
    return std::string("v");
  };
  std::vector<std::thread> readers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i)
    readers.emplace_back([&] { ok += t.Get(Kind::kUser, "u:1", load).ok() ? 1 : 0; });
  // Followers register as waiters; give them time to pile up behind the leader.
  for (int i = 0; i < 200 && Metric("millions_cache_singleflight_waits_total{kind=\"user\"}") < 7;
       ++i)
    std::this_thread::sleep_for(milliseconds(5));
  gate.unlock();
  for (auto& r : readers) r.join();
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(*t.Get(Kind::kUser, "u:1", load), "v");  // now from L1
  EXPECT_EQ(loads.load(), 1);
}

TEST_F(Fixture, ErrorsAreNotCached) {
  Tiered t(Options(), nullptr, env, registry);
  int loads = 0;
  auto fail = [&](bool) -> Result<std::string> {
    ++loads;
    return MakeError(Errc::kNotFound, "not_found", "no");
  };
  EXPECT_FALSE(t.Get(Kind::kPhoto, "p:1", fail).ok());
  EXPECT_FALSE(t.Get(Kind::kPhoto, "p:1", fail).ok());
  EXPECT_EQ(loads, 2);
}

TEST_F(Fixture, LeaseMakesOtherNodesWaitForTheFill) {
  auto a = Node(Options()), b = Node(Options());
  // Node a holds the lease: a reader on b waits, and reads a's fill.
  L2Lookup held = shared.Get("u:7");
  ASSERT_EQ(held.kind, L2Lookup::Kind::kLease);
  on_sleep = [&] { shared.Fill("u:7", held.token, "9999999999999:1:from-a", milliseconds(60000)); };
  int loads = 0;
  auto load = [&](bool) -> Result<std::string> {
    ++loads;
    return std::string("from-b");
  };
  EXPECT_EQ(*b->Get(Kind::kUser, "u:7", load), "from-a");
  EXPECT_EQ(loads, 0);
  EXPECT_EQ(Metric("millions_cache_lease_waits_total{kind=\"user\"}"), 1);
}

TEST_F(Fixture, AnAbandonedLeaseIsWaitedOutThenTakenOver) {
  auto b = Node(Options());
  ASSERT_EQ(shared.Get("u:8").kind, L2Lookup::Kind::kLease);  // a holder that never fills
  int loads = 0;
  auto start = env.Now();
  auto r = b->Get(Kind::kUser, "u:8", [&](bool) -> Result<std::string> {
    ++loads;
    return std::string("late");
  });
  EXPECT_EQ(*r, "late");
  EXPECT_EQ(loads, 1);
  EXPECT_GE(env.Now() - start, milliseconds(2000));  // the lease period, not more
  EXPECT_LE(env.Now() - start, milliseconds(2100));
  EXPECT_EQ(shared.fills, 1);  // the expired lease was taken over, and the fill stored
}

TEST_F(Fixture, ADeleteDuringALoadKeepsTheOldValueOut) {
  auto a = Node(Options()), b = Node(Options());
  std::string db = "old";
  // a loads "old"; before it fills, b's write commits "new" and invalidates.
  auto load_a = [&](bool) -> Result<std::string> {
    std::string seen = db;
    db = "new";
    b->Invalidate({{Kind::kUser, "u:3"}});
    return seen;
  };
  EXPECT_EQ(*a->Get(Kind::kUser, "u:3", load_a), "old");  // a read concurrent with the write
  EXPECT_EQ(shared.fills, 0);                             // the lease died with the delete
  bool primary = false;
  auto load = [&](bool p) -> Result<std::string> {
    primary = p;
    return db;
  };
  EXPECT_EQ(*a->Get(Kind::kUser, "u:3", load), "new");  // not "old" from L1 or L2
  EXPECT_TRUE(primary);  // the recent-write marker sends the load to the primary
  EXPECT_EQ(*b->Get(Kind::kUser, "u:3", load), "new");
}

TEST_F(Fixture, InvalidateBroadcastsToEveryL1) {
  auto a = Node(Options()), b = Node(Options());
  std::string db = "v1";
  auto load = [&](bool) -> Result<std::string> { return db; };
  EXPECT_EQ(*a->Get(Kind::kUser, "u:4", load), "v1");
  EXPECT_EQ(*b->Get(Kind::kUser, "u:4", load), "v1");
  EXPECT_EQ(*b->Peek(Kind::kUser, "u:4"), "v1");  // in b's L1 (threshold 0: every key is hot)
  db = "v2";
  a->Invalidate({{Kind::kUser, "u:4"}});
  EXPECT_FALSE(b->Peek(Kind::kUser, "u:4"));
  // Counted by level and kind: deleted once in L2, dropped from both L1s.
  EXPECT_EQ(Metric("millions_cache_invalidations_total{kind=\"user\",level=\"l2\"}"), 1);
  EXPECT_EQ(Metric("millions_cache_invalidations_total{kind=\"user\",level=\"l1\"}"), 2);
  EXPECT_EQ(Metric("millions_cache_broadcasts_received_total"), 2);
  EXPECT_EQ(*b->Get(Kind::kUser, "u:4", load), "v2");
}

TEST_F(Fixture, L1BoundsStalenessWhenABroadcastIsLost) {
  auto a = Node(Options());
  auto load = [&](bool) -> Result<std::string> { return std::string("v"); };
  (void)a->Get(Kind::kUser, "u:5", load);
  EXPECT_TRUE(a->Peek(Kind::kUser, "u:5"));
  env.Advance(milliseconds(2001));  // l1_ttl
  EXPECT_FALSE(a->Peek(Kind::kUser, "u:5"));
}

TEST_F(Fixture, HotKeysOnlyAreKeptInL1) {
  auto o = Options();
  o.hot_key_reads_per_s = 3;
  auto a = Node(o);
  auto load = [&](bool) -> Result<std::string> { return std::string("v"); };
  // A read that misses L1 on the event loop (Peek) and then goes on (Get) counts once.
  for (int read = 1; read <= 2; ++read) {
    EXPECT_FALSE(a->Peek(Kind::kUser, "u:cold")) << read;
    (void)a->Get(Kind::kUser, "u:cold", load);
  }
  EXPECT_FALSE(a->Peek(Kind::kUser, "u:cold"));  // two reads: not yet hot
  (void)a->Get(Kind::kUser, "u:cold", load);     // the third: hot, kept in L1
  EXPECT_TRUE(a->Peek(Kind::kUser, "u:cold"));
  env.Advance(milliseconds(2500));  // two windows without reads: cold again
  EXPECT_FALSE(a->Peek(Kind::kUser, "u:cold"));
}

TEST_F(Fixture, ExpiryNearAHotKeyIsRefreshedEarlyByOneReader) {
  auto o = Options();
  o.early_expiry_beta = 1.0;
  double rnd = 1.0;  // ln(1) = 0: no early refresh
  o.random = [&] { return rnd; };
  o.hot_key_reads_per_s = 1000;  // keep it out of L1 to read L2 each time
  auto a = Node(o);
  int loads = 0;
  auto load = [&](bool) -> Result<std::string> {
    ++loads;
    env.Advance(milliseconds(100));  // a load that takes 100 ms
    return "v" + std::to_string(loads);
  };
  EXPECT_EQ(*a->Get(Kind::kUser, "u:6", load), "v1");
  env.Advance(milliseconds(300000 - 1000));  // 1 s before expiry (TTL 5 min)
  EXPECT_EQ(*a->Get(Kind::kUser, "u:6", load), "v1");
  rnd = std::exp(-20.0);  // gap = 100 ms * 20 = 2 s: past expiry, refresh now
  EXPECT_EQ(*a->Get(Kind::kUser, "u:6", load), "v2");
  EXPECT_EQ(loads, 2);
  // While another holds the refresh lease, readers keep getting the current value.
  env.Advance(milliseconds(300000 - 1000));
  ASSERT_FALSE(shared.TryLease("u:6", "").empty());
  EXPECT_EQ(*a->Get(Kind::kUser, "u:6", load), "v2");
  EXPECT_EQ(loads, 2);
}

TEST_F(Fixture, ARefreshFromAnOlderVersionIsRefused) {
  // Versioned sets: a reader decides to refresh the version it read; if another node refreshed
  // in between, the reader gets no lease, loads nothing and overwrites nothing.
  auto o = Options();
  o.early_expiry_beta = 1.0;
  o.hot_key_reads_per_s = 1000;  // keep it out of L1
  std::function<double()> rnd = [] { return 1.0; };
  o.random = [&] { return rnd(); };
  auto a = Node(o), c = Node(o);
  int loads = 0;
  auto load = [&](bool) -> Result<std::string> {
    ++loads;
    return std::string("v1");
  };
  EXPECT_EQ(*a->Get(Kind::kUser, "u:9", load), "v1");
  env.Advance(milliseconds(300000 - 10));  // 10 ms before expiry
  bool raced = false;
  rnd = [&] {
    if (!raced) {  // between a's read and its refresh lease: another node refreshes
      raced = true;
      std::string t = shared.TryLease("u:9", "");
      EXPECT_TRUE(shared.Fill("u:9", t, std::to_string(env.WallMillis() + 300000) + ":1:v2",
                              milliseconds(330000)));
    }
    return std::exp(-20.0);  // and a decides to refresh too
  };
  EXPECT_EQ(*a->Get(Kind::kUser, "u:9", load), "v1");  // what it read; no lease for it
  EXPECT_EQ(loads, 1);
  EXPECT_TRUE(raced);
  rnd = [] { return 1.0; };
  EXPECT_EQ(*c->Get(Kind::kUser, "u:9", load), "v2");  // the newer fill stands
  EXPECT_EQ(loads, 1);
}

TEST_F(Fixture, CacheNodeDownIsAMissNotAnError) {
  auto a = Node(Options());
  shared.down = true;
  int loads = 0;
  auto load = [&](bool) -> Result<std::string> {
    ++loads;
    return std::string("v");
  };
  EXPECT_EQ(*a->Get(Kind::kFeed, "f:1", load), "v");
  EXPECT_EQ(shared.fills, 0);
  EXPECT_EQ(loads, 1);
}

// The scrape-time values come through a callback collector, read at each scrape.
TEST_F(Fixture, CollectorReportsL1SizeAndCacheNodes) {
  Tiered single(Options(), nullptr, env, registry);
  registry.AddCollector([&single](metrics::Families* out) { single.CollectMetrics(out); });
  auto load = [](bool) -> Result<std::string> { return std::string("12345"); };
  ASSERT_TRUE(single.Get(Kind::kUser, "u:1", load).ok());
  EXPECT_EQ(Metric("millions_cache_entries{level=\"l1\"}"), 1);
  EXPECT_GT(Metric("millions_cache_bytes{level=\"l1\"}"), 0);
  EXPECT_EQ(registry.Render().find("millions_cache_node_up"), std::string::npos);

  shared.stats = {{"redis1", true, 5, 1, 2, 0}, {"redis2", false, 0, 0, 0, 0}};
  auto a = Node(Options());
  registry.AddCollector([&a](metrics::Families* out) { a->CollectMetrics(out); });
  EXPECT_EQ(Metric("millions_cache_node_up{node=\"redis1\"}"), 1);
  EXPECT_EQ(Metric("millions_cache_node_up{node=\"redis2\"}"), 0);
  EXPECT_EQ(Metric("millions_cache_node_flushes_total{node=\"redis1\"}"), 2);
  EXPECT_EQ(Metric("millions_cache_evictions_total{level=\"l2\",node=\"redis1\"}"), 5);
  std::string text = registry.Render();
  EXPECT_NE(text.find("# TYPE millions_cache_node_up gauge\n"), std::string::npos) << text;
  shared.stats[1].up = true;
  EXPECT_EQ(Metric("millions_cache_node_up{node=\"redis2\"}"), 1);
}

TEST_F(Fixture, TtlJitterStaysWithinBounds) {
  auto o = Options();
  o.ttl_jitter = 0.1;
  o.random = [] { return 1.0; };  // the top of the range: +10%
  auto a = Node(o);
  (void)a->Get(Kind::kFeed, "f:2", [](bool) -> Result<std::string> { return std::string("v"); });
  shared.subscribers.clear();
  a->DropLocal({{Kind::kFeed, "f:2"}});
  env.Advance(milliseconds(10999));  // feed TTL 10 s, +10%, stored 10% longer still in L2
  int loads = 0;
  auto load = [&](bool) -> Result<std::string> {
    ++loads;
    return std::string("w");
  };
  EXPECT_EQ(*a->Get(Kind::kFeed, "f:2", load), "v");
  a->DropLocal({{Kind::kFeed, "f:2"}});
  env.Advance(milliseconds(1200));
  EXPECT_EQ(*a->Get(Kind::kFeed, "f:2", load), "w");
  EXPECT_EQ(loads, 1);
}

}  // namespace
}  // namespace millions::cache
