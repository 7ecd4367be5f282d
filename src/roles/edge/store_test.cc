// The object store's memory tier: the byte bound under each policy, the policy's order,
// variants by Vary, replacement, oversize objects, purges, and many threads at once.
// (store_disk_test.cc: the disk tier; cache_key_test.cc: the keys.)
#include "roles/edge/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "roles/edge/store_test_util.h"

namespace millions::edge {
namespace {

using testing::BodyOf;
using testing::Headers;
using testing::MakeObject;
using testing::Obj;

// Room for exactly three objects with one-byte keys and bodies, in one shard (so that the
// policy's order is exact).
std::unique_ptr<ObjectStore> Three(const char* policy) {
  StoreOptions o;
  o.policy = policy;
  o.shards = 1;
  o.memory_bytes = 3 * Obj("a", "1")->bytes();
  return OpenObjectStore(o);
}

bool Has(ObjectStore& s, const char* key) { return s.Lookup(key, Headers()) != nullptr; }

TEST(EdgeStore, UnknownPolicyThrows) {
  StoreOptions o;
  o.policy = "random";
  EXPECT_THROW(OpenObjectStore(o), std::invalid_argument);
}

TEST(EdgeStore, LruEvictsLeastRecentlyUsed) {
  auto s = Three("lru");
  s->Put(Obj("a", "1"));
  s->Put(Obj("b", "2"));
  s->Put(Obj("c", "3"));
  ASSERT_TRUE(Has(*s, "a"));  // a is now the most recent; b the least
  s->Put(Obj("d", "4"));
  EXPECT_FALSE(Has(*s, "b"));
  EXPECT_TRUE(Has(*s, "a"));
  EXPECT_TRUE(Has(*s, "c"));
  EXPECT_TRUE(Has(*s, "d"));
  EXPECT_EQ(s->Stats().evictions, 1u);
}

TEST(EdgeStore, FifoIgnoresHits) {
  auto s = Three("fifo");
  s->Put(Obj("a", "1"));
  s->Put(Obj("b", "2"));
  s->Put(Obj("c", "3"));
  ASSERT_TRUE(Has(*s, "a"));
  s->Put(Obj("d", "4"));
  EXPECT_FALSE(Has(*s, "a"));
  EXPECT_TRUE(Has(*s, "b"));
}

TEST(EdgeStore, LfuEvictsLeastFrequentlyUsed) {
  auto s = Three("lfu");
  s->Put(Obj("a", "1"));
  s->Put(Obj("b", "2"));
  s->Put(Obj("c", "3"));
  ASSERT_TRUE(Has(*s, "a"));
  ASSERT_TRUE(Has(*s, "a"));
  ASSERT_TRUE(Has(*s, "c"));
  s->Put(Obj("d", "4"));
  EXPECT_FALSE(Has(*s, "b"));
  EXPECT_TRUE(Has(*s, "a"));
  EXPECT_TRUE(Has(*s, "c"));
}

// Many puts of varied sizes, with hits in between: the bound holds after every one, under each
// policy, with one shard and with the default sharding.
TEST(EdgeStore, BoundRespectedUnderManyPuts) {
  for (const char* policy : {"lru", "lfu", "fifo"}) {
    for (int shards : {1, 0, 16}) {
      SCOPED_TRACE(std::string(policy) + " shards=" + std::to_string(shards));
      StoreOptions o;
      o.policy = policy;
      o.shards = shards;
      o.memory_bytes = 200 << 10;
      o.max_object_bytes = 8 << 10;
      auto s = OpenObjectStore(o);
      std::mt19937 rng(7);
      uint64_t max_seen = 0;
      for (int i = 0; i < 3000; ++i) {
        std::string key = "GET /o" + std::to_string(rng() % 500) + " h";
        s->Put(Obj(key, std::string(rng() % 6000, 'x')));
        if (i % 3 == 0) s->Lookup("GET /o" + std::to_string(rng() % 500) + " h", Headers());
        max_seen = std::max(max_seen, s->Stats().memory_bytes);
      }
      StoreStats st = s->Stats();
      EXPECT_LE(max_seen, o.memory_bytes);
      EXPECT_GT(st.memory_bytes, o.memory_bytes / 2);  // and it is used
      EXPECT_GT(st.evictions, 0u);
      // What Stats counts is what is there: purging everything brings both to zero.
      s->PurgePrefix("");
      EXPECT_EQ(s->Stats().memory_bytes, 0u);
      EXPECT_EQ(s->Stats().memory_objects, 0u);
    }
  }
}

TEST(EdgeStore, BytesCountKeyHeadersBodyAndOverhead) {
  auto o = Obj("GET /a h", std::string(1000, 'x'), {"t1"});
  EXPECT_EQ(o->bytes(), kObjectOverhead + o->key.size() + o->headers.size() + 1000 + 2);
  auto s = OpenObjectStore({});
  s->Put(o);
  EXPECT_EQ(s->Stats().memory_bytes, o->bytes());
  EXPECT_EQ(s->Stats().memory_objects, 1u);
}

ObjectPtr Encoded(const std::string& encoding, const std::string& body) {
  return MakeObject(
      {"GET /v h", body, {"accept-encoding"}, Headers({{"Accept-Encoding", encoding}}), {}});
}

TEST(EdgeStore, VariantsByVary) {
  auto s = OpenObjectStore({});
  s->Put(Encoded("gzip", "gzipped"));
  s->Put(Encoded("br", "brotli"));
  EXPECT_EQ(BodyOf(s->Lookup("GET /v h", Headers({{"Accept-Encoding", "gzip"}}))), "gzipped");
  EXPECT_EQ(BodyOf(s->Lookup("GET /v h", Headers({{"accept-encoding", " br "}}))), "brotli");
  EXPECT_EQ(s->Lookup("GET /v h", Headers({{"Accept-Encoding", "identity"}})), nullptr);
  EXPECT_EQ(s->Lookup("GET /v h", Headers()), nullptr);  // absent matches only absent
  EXPECT_EQ(s->Stats().memory_objects, 2u);
}

TEST(EdgeStore, VaryStarNeverMatches) {
  auto s = OpenObjectStore({});
  s->Put(MakeObject({"GET /s h", "x", {"*"}, Headers(), {}}));
  EXPECT_EQ(s->Lookup("GET /s h", Headers()), nullptr);
}

TEST(EdgeStore, PutReplacesTheSameVariant) {
  auto s = OpenObjectStore({});
  s->Put(Encoded("gzip", "old"));
  s->Put(Encoded("br", "brotli"));
  auto newer = Encoded("gzip", "newer and longer");
  s->Put(newer);
  EXPECT_EQ(BodyOf(s->Lookup("GET /v h", Headers({{"Accept-Encoding", "gzip"}}))),
            "newer and longer");
  EXPECT_EQ(BodyOf(s->Lookup("GET /v h", Headers({{"Accept-Encoding", "br"}}))), "brotli");
  EXPECT_EQ(s->Stats().memory_objects, 2u);
  EXPECT_EQ(s->Stats().memory_bytes, newer->bytes() + Encoded("br", "brotli")->bytes());
}

TEST(EdgeStore, AtMostMaxVariantsOldestLeaves) {
  auto s = OpenObjectStore({});
  for (int i = 0; i <= ObjectStore::kMaxVariants; ++i)
    s->Put(Encoded("e" + std::to_string(i), "body" + std::to_string(i)));
  EXPECT_EQ(s->Stats().memory_objects, static_cast<uint64_t>(ObjectStore::kMaxVariants));
  EXPECT_EQ(s->Lookup("GET /v h", Headers({{"Accept-Encoding", "e0"}})), nullptr);
  EXPECT_EQ(BodyOf(s->Lookup("GET /v h", Headers({{"Accept-Encoding", "e1"}}))), "body1");
}

TEST(EdgeStore, OversizeIgnoredAndItsOutdatedVariantRemoved) {
  StoreOptions o;
  o.max_object_bytes = 4096;
  auto s = OpenObjectStore(o);
  s->Put(Obj("GET /big h", std::string(5000, 'x')));
  EXPECT_FALSE(Has(*s, "GET /big h"));
  EXPECT_EQ(s->Stats().memory_bytes, 0u);
  s->Put(Obj("GET /grows h", "small"));
  ASSERT_TRUE(Has(*s, "GET /grows h"));
  s->Put(Obj("GET /grows h", std::string(5000, 'x')));
  EXPECT_FALSE(Has(*s, "GET /grows h"));
}

TEST(EdgeStore, ObjectLargerThanAShardIsNotKeptInMemory) {
  StoreOptions o;
  o.shards = 4;
  o.memory_bytes = 16 << 10;  // 4 KiB a shard
  o.max_object_bytes = 8 << 10;
  auto s = OpenObjectStore(o);
  s->Put(Obj("GET /a h", std::string(6000, 'x')));
  EXPECT_FALSE(Has(*s, "GET /a h"));
  EXPECT_LE(s->Stats().memory_bytes, o.memory_bytes);
}

TEST(EdgeStore, PurgeKeyRemovesEveryVariant) {
  auto s = OpenObjectStore({});
  s->Put(Encoded("gzip", "g"));
  s->Put(Encoded("br", "b"));
  s->Put(Obj("GET /other h", "o"));
  EXPECT_EQ(s->PurgeKey("GET /v h"), 2u);
  EXPECT_EQ(s->Lookup("GET /v h", Headers({{"Accept-Encoding", "gzip"}})), nullptr);
  EXPECT_EQ(s->Lookup("GET /v h", Headers({{"Accept-Encoding", "br"}})), nullptr);
  EXPECT_TRUE(Has(*s, "GET /other h"));
  EXPECT_EQ(s->PurgeKey("GET /v h"), 0u);
}

TEST(EdgeStore, PurgePrefixAcrossHosts) {
  auto s = OpenObjectStore({});
  s->Put(Obj(CacheKey("GET", "a.example", "/media/1.jpg", ""), "1"));
  s->Put(Obj(CacheKey("GET", "b.example", "/media/2.jpg", "w=10"), "2"));
  s->Put(Obj(CacheKey("GET", "a.example", "/assets/app.js", ""), "3"));
  EXPECT_EQ(s->PurgePrefix(CacheKeyPathPrefix("/media/")), 2u);
  EXPECT_EQ(s->Stats().memory_objects, 1u);
  EXPECT_TRUE(s->Lookup(CacheKey("GET", "a.example", "/assets/app.js", ""), Headers()));
}

TEST(EdgeStore, PurgeTag) {
  auto s = OpenObjectStore({});
  s->Put(Obj("GET /p1 h", "1", {"user-7", "photos"}));
  s->Put(Obj("GET /p2 h", "2", {"user-8", "photos"}));
  s->Put(Obj("GET /p3 h", "3", {"user-7"}));
  EXPECT_EQ(s->PurgeTag("user-7"), 2u);
  EXPECT_FALSE(Has(*s, "GET /p1 h"));
  EXPECT_FALSE(Has(*s, "GET /p3 h"));
  EXPECT_TRUE(Has(*s, "GET /p2 h"));
  EXPECT_EQ(s->PurgeTag("user-7"), 0u);
  // The tag index forgets what left by other means.
  s->PurgeKey("GET /p2 h");
  EXPECT_EQ(s->PurgeTag("photos"), 0u);
}

// Several threads put, look up and purge overlapping keys, with a disk tier whose writer runs
// too. Checks the invariants at the end; its main use is under ThreadSanitizer (tsan preset).
TEST(EdgeStore, ConcurrentLookupsPutsPurges) {
  auto dir = std::filesystem::temp_directory_path() /
             ("edge_store_concurrent_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  StoreOptions o;
  o.memory_bytes = 64 << 10;
  o.max_object_bytes = 4 << 10;
  o.disk_dir = dir.string();
  o.disk_bytes = 256 << 10;
  auto s = OpenObjectStore(o);
  std::atomic<uint64_t> hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 4000; ++i) {
        std::string key = "GET /k" + std::to_string(rng() % 64) + " h";
        std::string enc = rng() % 2 ? "gzip" : "br";
        auto req = Headers({{"Accept-Encoding", enc}});
        switch (rng() % 10) {
          case 0:
            s->PurgeKey(key);
            break;
          case 1:
            if (i % 50 == 0) s->PurgePrefix("GET /k1");
            break;
          case 2:
            if (i % 50 == 0) s->PurgeTag("t" + std::to_string(rng() % 4));
            break;
          case 3:
          case 4:
          case 5: {
            auto obj = MakeObject({key,
                                   std::string(rng() % 3000, 'x'),
                                   {"accept-encoding"},
                                   req,
                                   {"t" + std::to_string(rng() % 4)}});
            s->Put(obj);
            break;
          }
          case 6:
            if (auto hit = s->LoadFromDisk(key, req)) {
              EXPECT_EQ(hit->key, key);
              hits.fetch_add(1);
            }
            break;
          default:
            if (auto hit = s->Lookup(key, req)) {
              EXPECT_EQ(hit->key, key);
              EXPECT_EQ(hit->vary_key, VaryKey({"accept-encoding"}, req));
              hits.fetch_add(1);
            }
        }
        if (i % 100 == 0) {
          EXPECT_LE(s->Stats().memory_bytes, o.memory_bytes);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  s->FlushDisk();
  EXPECT_GT(hits.load(), 0u);
  StoreStats st = s->Stats();
  EXPECT_LE(st.memory_bytes, o.memory_bytes);
  EXPECT_LE(st.disk_bytes, o.disk_bytes);
  EXPECT_EQ(st.disk_errors, 0u);
  s->PurgePrefix("");
  s->FlushDisk();
  st = s->Stats();
  EXPECT_EQ(st.memory_objects + st.memory_bytes + st.disk_objects + st.disk_bytes, 0u);
  s.reset();
  // Nothing left but the directory's lock file (kept: unlinking it would let two processes
  // each lock a different inode of the same name).
  for (const auto& e : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(e.path().filename(), ".lock");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace millions::edge
