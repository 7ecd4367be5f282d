// l2_bench: GET throughput of our L2 client (RedisL2 on one node: ring routing, the pipelined
// Asio connection) from N threads, each waiting for its answer like a web node's blocking pool.
// All threads share the one connection, so at most THREADS GETs are in flight on it at a time.
//
// It reads keys someone else wrote: key:000000000000 .. key:<KEYS-1>, numbered as
// redis-benchmark's __rand_int__ (12 digits, zero-padded), each holding a VALUE_BYTES-byte value.
// bench/cache.py writes them, then runs this and `redis-benchmark ... GET key:__rand_int__` on
// the same node, so both sides read the same keys and get the same bytes back.
//
// Only hits of the expected size count as GETs. A miss (the key was not there: RedisL2 answers
// with a lease or a wait), an error (timeout, connection down) or a hit of another size is
// counted apart, and any one of them makes the run fail (exit 1): the figure is then not a
// figure of GETs that returned the value.
//
// Usage: l2_bench PORT THREADS SECONDS KEYS VALUE_BYTES [WARMUP_SECONDS]
// Prints one JSON line on stdout. Exit 0: every GET was a hit of VALUE_BYTES bytes; 1: a miss,
// an error, a wrong value, or the node never came up; 2: usage. Loopback only; bounded in time
// (WARMUP_SECONDS + SECONDS + at most a few seconds to connect and to join).
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cache/l2.h"
#include "core/env.h"

namespace {

using Clock = std::chrono::steady_clock;

struct alignas(64) Counters {
  std::atomic<uint64_t> hits{0}, misses{0}, errors{0}, wrong{0};
};

struct Totals {
  uint64_t hits = 0, misses = 0, errors = 0, wrong = 0;
};

Totals Sum(const std::vector<Counters>& cs) {
  Totals t;
  for (const auto& c : cs) {
    t.hits += c.hits.load(std::memory_order_relaxed);
    t.misses += c.misses.load(std::memory_order_relaxed);
    t.errors += c.errors.load(std::memory_order_relaxed);
    t.wrong += c.wrong.load(std::memory_order_relaxed);
  }
  return t;
}

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

bool ParsePositive(const char* s, long max, long* out) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 0 || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long port = 0, threads = 0, seconds = 0, keys = 0, value_bytes = 0, warmup = 1;
  if ((argc != 6 && argc != 7) || !ParsePositive(argv[1], 65535, &port) ||
      !ParsePositive(argv[2], 1000, &threads) || !ParsePositive(argv[3], 3600, &seconds) ||
      !ParsePositive(argv[4], 100'000'000, &keys) ||
      !ParsePositive(argv[5], 1 << 20, &value_bytes) ||
      (argc == 7 && !ParsePositive(argv[6], 600, &warmup)) || port == 0 || threads == 0 ||
      seconds == 0 || keys == 0) {
    fprintf(stderr, "usage: l2_bench PORT THREADS SECONDS KEYS VALUE_BYTES [WARMUP_SECONDS]\n");
    return 2;
  }
  using namespace millions;
  cache::RedisL2Options o;
  o.nodes = {{"r1", "127.0.0.1", int(port)}};
  // Generous beside a web node's 100 ms: 50 threads share two cores with the server here, and a
  // timeout would count as an error (and fail the run), not as a slow GET.
  o.timeout = std::chrono::milliseconds(1000);
  auto l2 = cache::OpenRedisL2(o, Env::Default());
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!l2->Stats()[0].up && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!l2->Stats()[0].up) {
    fprintf(stderr, "l2_bench: 127.0.0.1:%ld did not come up within 5 s\n", port);
    printf("{\"error\": \"node not up\"}\n");
    return 1;
  }

  std::atomic<bool> stop{false};
  std::vector<Counters> counters(static_cast<size_t>(threads));
  std::vector<std::thread> ts;
  for (long t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      Counters& c = counters[size_t(t)];
      uint64_t x = 0x9E3779B97F4A7C15ull * uint64_t(t + 1);  // xorshift64: a random key each GET
      char key[32];
      while (!stop.load(std::memory_order_relaxed)) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        snprintf(key, sizeof key, "key:%012llu", (unsigned long long)(x % uint64_t(keys)));
        auto lk = l2->Get(key);
        switch (lk.kind) {
          case cache::L2Lookup::Kind::kHit:
            (lk.value.size() == size_t(value_bytes) ? c.hits : c.wrong)
                .fetch_add(1, std::memory_order_relaxed);
            break;
          case cache::L2Lookup::Kind::kLease:  // not there: we were handed the lease to fill it
          case cache::L2Lookup::Kind::kWait:   // not there, and another reader holds the lease
            c.misses.fetch_add(1, std::memory_order_relaxed);
            break;
          case cache::L2Lookup::Kind::kUnavailable:  // timeout or connection down
            c.errors.fetch_add(1, std::memory_order_relaxed);
            break;
        }
      }
    });

  // Warm-up (not measured), then the measured window.
  std::this_thread::sleep_for(std::chrono::seconds(warmup));
  Totals a = Sum(counters);
  double cpu0 = CpuSeconds();
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  Totals b = Sum(counters);
  double cpu1 = CpuSeconds();
  auto t1 = Clock::now();
  stop = true;
  for (auto& t : ts) t.join();
  Totals all = Sum(counters);

  double elapsed = std::chrono::duration<double>(t1 - t0).count();
  uint64_t hits = b.hits - a.hits;
  bool ok = all.misses == 0 && all.errors == 0 && all.wrong == 0 && hits > 0;
  printf(
      "{\"gets_per_s\": %.0f, \"hits\": %llu, \"measured_s\": %.3f, \"cpu_us_per_get\": %.2f, "
      "\"threads\": %ld, \"keys\": %ld, \"value_bytes\": %ld, \"warmup_s\": %ld, "
      "\"all_hits\": %llu, \"misses\": %llu, \"errors\": %llu, \"wrong_value\": %llu, "
      "\"ok\": %s}\n",
      double(hits) / elapsed, (unsigned long long)hits, elapsed,
      hits ? (cpu1 - cpu0) * 1e6 / double(hits) : 0.0, threads, keys, value_bytes, warmup,
      (unsigned long long)all.hits, (unsigned long long)all.misses, (unsigned long long)all.errors,
      (unsigned long long)all.wrong, ok ? "true" : "false");
  if (!ok)
    fprintf(stderr,
            "l2_bench: FAILED: %llu misses, %llu errors, %llu values not %ld bytes, %llu hits "
            "measured (every GET must be a hit)\n",
            (unsigned long long)all.misses, (unsigned long long)all.errors,
            (unsigned long long)all.wrong, value_bytes, (unsigned long long)hits);
  return ok ? 0 : 1;
}
