#include "cache/tiered.h"

#include <atomic>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "cache/hot_keys.h"

namespace millions::cache {
namespace {

using std::chrono::milliseconds;

constexpr const char* kKindNames[kKinds] = {"user",      "photo",     "session", "photos",
                                            "followers", "following", "feed"};

// L2 values carry what XFetch needs: "expiry_wall_ms:load_ms:payload".
std::string Encode(int64_t expiry_ms, int64_t load_ms, const std::string& payload) {
  return std::to_string(expiry_ms) + ":" + std::to_string(load_ms) + ":" + payload;
}

struct Decoded {
  int64_t expiry_ms = 0;
  int64_t load_ms = 0;
  std::string version;  // "expiry_wall_ms:load_ms:": which fill this is
  std::string payload;
};

std::optional<Decoded> Decode(std::string&& v) {
  Decoded d;
  size_t a = v.find(':');
  if (a == std::string::npos) return std::nullopt;
  size_t b = v.find(':', a + 1);
  if (b == std::string::npos) return std::nullopt;
  if (std::from_chars(v.data(), v.data() + a, d.expiry_ms).ec != std::errc{} ||
      std::from_chars(v.data() + a + 1, v.data() + b, d.load_ms).ec != std::errc{})
    return std::nullopt;
  d.version = v.substr(0, b + 1);
  d.payload = v.substr(b + 1);
  return d;
}

double DefaultRandom() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  // (0, 1]: log() below must not see 0.
  return (double(rng() >> 11) + 1.0) / 9007199254740992.0;
}

}  // namespace

const char* KindName(Kind k) { return kKindNames[size_t(k)]; }

// One load in flight in this node; followers wait for the leader's result.
struct Flight {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::atomic<bool> invalidated{false};  // an Invalidate/DropLocal of the key ran while loading
  std::optional<Result<std::string>> result;
};

struct Tiered::Impl {
  struct Counters {
    metrics::Counter *l1_hit, *l1_miss, *l2_hit, *l2_miss, *l1_fill, *l2_fill, *lease_wait,
        *flight_wait, *loads, *saved, *early, *inval_l1, *inval_l2;
  };

  Impl(TieredOptions o, Env& e, metrics::Registry& m)
      : opt(std::move(o)),
        env(e),
        l1(Cache::Create(opt.l1, e)),
        hot(e, opt.hot_key_reads_per_s),
        broadcasts(&m.GetCounter("millions_cache_broadcasts_received_total",
                                 "L1 invalidation broadcasts received.", {})) {
    if (!opt.sleep) opt.sleep = [](milliseconds d) { std::this_thread::sleep_for(d); };
    if (!opt.random) opt.random = DefaultRandom;
    for (size_t k = 0; k < kKinds; ++k) {
      auto c = [&](const char* name, const char* help, metrics::Labels labels) {
        labels.insert(labels.begin(), {"kind", kKindNames[k]});
        return &m.GetCounter(name, help, labels);
      };
      const char* req = "Cache lookups by level, kind and result.";
      const char* kInval = "Cache entries deleted by writes (l1: this node's, l2: shared).";
      auto lv = [](const char* level, const char* result) {
        return metrics::Labels{{"level", level}, {"result", result}};
      };
      counters[k] = {
          c("millions_cache_requests_total", req, lv("l1", "hit")),
          c("millions_cache_requests_total", req, lv("l1", "miss")),
          c("millions_cache_requests_total", req, lv("l2", "hit")),
          c("millions_cache_requests_total", req, lv("l2", "miss")),
          c("millions_cache_fills_total", "Values stored after a load.", {{"level", "l1"}}),
          c("millions_cache_fills_total", "Values stored after a load.", {{"level", "l2"}}),
          c("millions_cache_lease_waits_total",
            "Reads that waited for another node's load (L2 lease held elsewhere).", {}),
          c("millions_cache_singleflight_waits_total",
            "Reads that waited for a load of the same key in this node.", {}),
          c("millions_cache_loads_total", "Reads that went to the database after a miss.", {}),
          c("millions_cache_db_reads_saved_total", "Reads served by a cache level.", {}),
          c("millions_cache_early_refreshes_total", "Hot values refreshed before expiry.", {}),
          c("millions_cache_invalidations_total", kInval, {{"level", "l1"}}),
          c("millions_cache_invalidations_total", kInval, {{"level", "l2"}}),
      };
    }
  }

  milliseconds Jitter(milliseconds ttl) {
    if (opt.ttl_jitter <= 0 || ttl.count() <= 1) return ttl;
    double f = 1.0 + opt.ttl_jitter * (2.0 * opt.random() - 1.0);
    return milliseconds(std::max<int64_t>(1, int64_t(double(ttl.count()) * f)));
  }

  // XFetch: refresh when now - load_time * beta * ln(rand) >= expiry.
  bool RefreshEarly(const Decoded& d) {
    if (opt.early_expiry_beta <= 0) return false;
    double gap =
        -double(std::max<int64_t>(d.load_ms, 1)) * opt.early_expiry_beta * std::log(opt.random());
    return double(env.WallMillis()) + gap >= double(d.expiry_ms);
  }

  void PutL1(const std::string& key, const std::string& value, Kind kind, const Flight& f) {
    if (f.invalidated) return;
    if (!l2) {
      l1->Put(key, value, Jitter(opt.ttl[size_t(kind)]));
      counters[size_t(kind)].l1_fill->Inc();
      return;
    }
    if (!hot.IsHot(key)) return;
    l1->Put(key, value, std::min(opt.l1_ttl, opt.ttl[size_t(kind)]));
    counters[size_t(kind)].l1_fill->Inc();
  }

  Result<std::string> Timed(const Loader& load, bool primary, Kind kind, int64_t* took_ms) {
    counters[size_t(kind)].loads->Inc();
    auto start = env.Now();
    auto r = load(primary);
    *took_ms = std::chrono::duration_cast<milliseconds>(env.Now() - start).count();
    return r;
  }

  // The leader's path: L2, then the database.
  Result<std::string> Lead(Kind kind, const std::string& key, const Loader& load, Flight& f) {
    Counters& c = counters[size_t(kind)];
    int64_t took = 0;
    if (!l2) {
      auto r = Timed(load, false, kind, &took);
      if (r.ok()) PutL1(key, *r, kind, f);
      return r;
    }
    auto deadline = env.Now() + opt.lease_wait;
    milliseconds poll = opt.lease_poll;
    bool waited = false;
    for (;;) {
      L2Lookup lk = l2->Get(key);
      if (lk.kind == L2Lookup::Kind::kHit) {
        auto d = Decode(std::move(lk.value));
        if (d) {
          c.l2_hit->Inc();
          c.saved->Inc();
          if (RefreshEarly(*d)) {
            std::string token = l2->TryLease(key, d->version);
            if (!token.empty()) {
              c.early->Inc();
              return LoadAndFill(kind, key, load, f, token, false);
            }
          }
          PutL1(key, d->payload, kind, f);
          return std::move(d->payload);
        }
        lk.kind = L2Lookup::Kind::kUnavailable;  // not ours: treat as a miss, do not fill
      }
      if (lk.kind == L2Lookup::Kind::kLease) {
        c.l2_miss->Inc();
        return LoadAndFill(kind, key, load, f, lk.token, lk.recent_write);
      }
      if (lk.kind == L2Lookup::Kind::kUnavailable || env.Now() >= deadline) {
        // No cache node, or the lease holder never filled: load, and leave the cache alone.
        c.l2_miss->Inc();
        auto r = Timed(load, lk.recent_write, kind, &took);
        if (r.ok()) PutL1(key, *r, kind, f);
        return r;
      }
      if (!waited) c.lease_wait->Inc();
      waited = true;
      opt.sleep(poll);
      poll = std::min(poll * 2, milliseconds(40));
    }
  }

  Result<std::string> LoadAndFill(Kind kind, const std::string& key, const Loader& load, Flight& f,
                                  const std::string& token, bool primary) {
    int64_t took = 0;
    auto r = Timed(load, primary, kind, &took);
    if (!r.ok()) {
      l2->Release(key, token);
      return r;
    }
    milliseconds ttl = Jitter(opt.ttl[size_t(kind)]);
    // Redis keeps the value a little past its logical expiry: XFetch refreshes before it.
    if (l2->Fill(key, token, Encode(env.WallMillis() + ttl.count(), took, *r), ttl + ttl / 10))
      counters[size_t(kind)].l2_fill->Inc();
    PutL1(key, *r, kind, f);
    return r;
  }

  void MarkInvalidated(const std::vector<CacheKey>& keys) {
    std::lock_guard lock(flights_mu);
    for (const auto& k : keys)
      if (auto it = flights.find(k.key); it != flights.end()) it->second->invalidated = true;
  }

  TieredOptions opt;
  Env& env;
  std::unique_ptr<Cache> l1;
  L2* l2 = nullptr;
  HotKeys hot;
  std::array<Counters, kKinds> counters;
  metrics::Counter* broadcasts;
  std::mutex flights_mu;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights;
};

Tiered::Tiered(TieredOptions options, std::unique_ptr<L2> l2, Env& env, metrics::Registry& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), env, metrics)) {
  AttachL2(std::move(l2));
}

Tiered::~Tiered() { l2_.reset(); }

void Tiered::AttachL2(std::unique_ptr<L2> l2) {
  l2_ = std::move(l2);
  impl_->l2 = l2_.get();
}

// Each read is counted once for hotness: a hit here, or (after a miss here) in the Get that
// follows. Counting both would make a key hot at half its threshold.
std::optional<std::string> Tiered::Peek(Kind kind, std::string_view key) {
  auto v = impl_->l1->Get(key);
  if (v) {
    if (l2_) impl_->hot.Touch(key);
    impl_->counters[size_t(kind)].l1_hit->Inc();
    impl_->counters[size_t(kind)].saved->Inc();
  }
  return v;
}

Result<std::string> Tiered::Get(Kind kind, const std::string& key, const Loader& load) {
  auto& c = impl_->counters[size_t(kind)];
  if (l2_) impl_->hot.Touch(key);
  if (auto v = impl_->l1->Get(key)) {
    c.l1_hit->Inc();
    c.saved->Inc();
    return std::move(*v);
  }
  c.l1_miss->Inc();
  std::shared_ptr<Flight> f;
  bool leader = false;
  {
    std::lock_guard lock(impl_->flights_mu);
    auto& slot = impl_->flights[key];
    if (!slot) {
      slot = std::make_shared<Flight>();
      leader = true;
    }
    f = slot;
  }
  if (!leader) {
    c.flight_wait->Inc();
    std::unique_lock lock(f->mu);
    // The leader's load is bounded by the database's own timeouts; this bound is a backstop.
    if (f->cv.wait_for(lock, std::chrono::seconds(30), [&] { return f->done; })) return *f->result;
    lock.unlock();
    int64_t took;
    return impl_->Timed(load, false, kind, &took);
  }
  auto r = impl_->Lead(kind, key, load, *f);
  {
    std::lock_guard lock(impl_->flights_mu);
    impl_->flights.erase(key);
  }
  {
    std::lock_guard lock(f->mu);
    f->result = r;
    f->done = true;
  }
  f->cv.notify_all();
  return r;
}

void Tiered::Invalidate(const std::vector<CacheKey>& keys) {
  if (keys.empty()) return;
  DropLocal(keys);
  if (!l2_ && remotes_.empty()) return;
  std::vector<std::string> plain, lines;
  for (const auto& k : keys) {
    plain.push_back(k.key);
    // Broadcast lines carry the kind: "<kind index>:<key>".
    lines.push_back(std::to_string(size_t(k.kind)) + ":" + k.key);
    impl_->counters[size_t(k.kind)].inval_l2->Inc();
  }
  if (l2_) {
    l2_->Delete(plain);
    l2_->Publish(lines);
  }
  for (const auto& remote : remotes_) {
    remote->Delete(plain);
    remote->Publish(lines);
  }
}

void Tiered::DropLocal(const std::vector<CacheKey>& keys) {
  impl_->MarkInvalidated(keys);
  for (const auto& k : keys)
    if (impl_->l1->Erase(k.key)) impl_->counters[size_t(k.kind)].inval_l1->Inc();
}

void Tiered::OnBroadcast(const std::vector<std::string>& lines) {
  impl_->broadcasts->Inc();
  std::vector<CacheKey> keys;
  for (const auto& line : lines) {
    size_t colon = line.find(':');
    size_t kind = kKinds;
    if (colon != std::string::npos) std::from_chars(line.data(), line.data() + colon, kind);
    if (kind >= kKinds) continue;  // not ours
    keys.push_back({Kind(kind), line.substr(colon + 1)});
  }
  DropLocal(keys);
}

CacheStats Tiered::L1Stats() const { return impl_->l1->Stats(); }

std::vector<L2NodeStats> Tiered::L2Stats() const {
  return l2_ ? l2_->Stats() : std::vector<L2NodeStats>{};
}

void Tiered::CollectMetrics(metrics::Families* out) const {
  auto s = L1Stats();
  auto nodes = L2Stats();
  auto evictions = metrics::AddCounter(out, "millions_cache_evictions_total",
                                       "Entries evicted for space (l1: this node, l2: per node).");
  evictions.Add({{"level", "l1"}}, double(s.evictions));
  for (const auto& n : nodes)
    evictions.Add({{"level", "l2"}, {"node", n.name}}, double(n.evicted_keys));
  metrics::AddGauge(out, "millions_cache_entries", "Entries held in L1.")
      .Add({{"level", "l1"}}, double(s.entries));
  metrics::AddGauge(out, "millions_cache_bytes", "Bytes held in L1 (keys and values).")
      .Add({{"level", "l1"}}, double(s.bytes));
  if (nodes.empty()) return;
  auto up = metrics::AddGauge(out, "millions_cache_node_up", "1 while the cache node answers.");
  for (const auto& n : nodes) up.Add({{"node", n.name}}, n.up ? 1 : 0);
  auto flushes =
      metrics::AddCounter(out, "millions_cache_node_flushes_total",
                          "FLUSHALLs sent to a cache node on reconnect (it missed invalidations).");
  for (const auto& n : nodes) flushes.Add({{"node", n.name}}, double(n.flushes));
}

}  // namespace millions::cache
