// l2_bench: GET throughput of our L2 client (RedisL2 on one node: ring routing, the pipelined
// Asio connection) from N threads, each waiting for its answer like a web node's blocking pool.
// bench/cache.py runs it beside `redis-benchmark -t get` on the same node, same key count.
// Usage: l2_bench PORT THREADS SECONDS   (loopback only; bounded in time)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cache/l2.h"
#include "cache/redis_client.h"
#include "core/env.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: l2_bench PORT THREADS SECONDS\n");
    return 2;
  }
  int port = std::atoi(argv[1]), threads = std::atoi(argv[2]), seconds = std::atoi(argv[3]);
  using namespace millions;
  cache::RedisL2Options o;
  o.nodes = {{"r1", "127.0.0.1", port}};
  o.timeout = std::chrono::milliseconds(1000);
  auto l2 = cache::OpenRedisL2(o, Env::Default());
  constexpr int kKeys = 1000;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (l2->Stats()[0].up == false && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Values as Tiered stores them: a small header and a rendered user of about 200 bytes.
  for (int k = 0; k < kKeys; ++k) {
    std::string key = "bench:" + std::to_string(k);
    auto lk = l2->Get(key);
    if (lk.kind == cache::L2Lookup::Kind::kLease)
      l2->Fill(key, lk.token, "9999999999999:1:" + std::string(200, 'x'), std::chrono::minutes(10));
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> hits{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      uint64_t h = 0, o2 = 0;
      for (int i = t; !stop.load(std::memory_order_relaxed); ++i) {
        auto lk = l2->Get("bench:" + std::to_string(i % kKeys));
        (lk.kind == cache::L2Lookup::Kind::kHit ? h : o2)++;
      }
      hits += h;
      other += o2;
    });
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  printf("{\"gets_per_s\": %.0f, \"hits\": %llu, \"not_hits\": %llu, \"threads\": %d}\n",
         double(hits + other) / seconds, (unsigned long long)hits.load(),
         (unsigned long long)other.load(), threads);
  return other == 0 ? 0 : 1;
}
