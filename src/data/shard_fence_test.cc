// The fence on real PostgreSQL (two databases of one server standing in for two clusters):
// each cluster takes only the rows of the logical shards it owns, a node with a stale map is
// refused and re-reads the map, a write to a frozen shard waits for the cut-over (and fails
// only past the bound), and a follow across clusters is written on both.
#include "data/shard_fence.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "data/ids.h"
#include "data/sharded_store.h"
#include "data/store.h"
#include "pg_instance.h"

namespace millions::data {
namespace {

constexpr int kLogical = 64;

class FenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pg_ = new testing::PgInstance(); }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }

  void SetUp() override {
    static int n = 0;
    ++n;
    map_ = std::make_shared<const ShardMap>(
        NextShardMap(*MakeBalancedShardFunction(), {"a", "b"}, kLogical, nullptr));
    fresh_ = map_;
    auto counts = map_->Counts();
    std::map<std::string, std::unique_ptr<Store>> clusters;
    for (const char* name : {"a", "b"}) {
      pg::Options o;
      o.conninfo = pg_->Conninfo("fence_" + std::string(name) + std::to_string(n));
      o.pool_size = 2;
      options_[name] = o;
      auto written = PrepareShardCluster(o, *map_, name);
      ASSERT_TRUE(written.ok()) << written.error().message;
      EXPECT_EQ(*written, counts[name[0] == 'a' ? 0 : 1]) << "one row per owned shard";
      auto again = PrepareShardCluster(o, *map_, name);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(*again, 0) << "a filled table is left as it is";
      clusters[name] = OpenPgStore(o);
      direct_[name] = clusters[name].get();
    }
    ShardedStoreOptions so;
    so.map = [this] { return std::atomic_load(&map_); };
    so.refresh = [this] {
      ++refreshes_;
      std::atomic_store(&map_, std::atomic_load(&fresh_));
    };
    so.frozen_wait = std::chrono::milliseconds(2000);
    store_ = MakeShardedStore(std::move(so), std::move(clusters));
  }

  // Runs one statement on a cluster as the application.
  void Sql(const std::string& cluster, const std::string& sql) {
    pg::Options o = options_[cluster];
    o.pool_size = 1;
    pg::Pool pool(o);
    auto c = pool.Acquire();
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Simple(sql.c_str()).ok()) << sql;
  }

  UserRow Row(const std::string& prefix, const std::string& cluster) {
    for (int i = 0;; ++i) {
      std::string handle = prefix + std::to_string(i);
      int shard = LogicalShardOfHandle(handle, kLogical);
      if (fresh_->ClusterOf(shard) != cluster) continue;
      UserRow u;
      u.id = *direct_[cluster]->NewId(shard);
      u.handle = handle;
      u.display_name = handle;
      u.password_hash = "x";
      u.created_ms = 1;
      return u;
    }
  }

  static testing::PgInstance* pg_;
  std::shared_ptr<const ShardMap> map_, fresh_;
  std::map<std::string, pg::Options> options_;
  std::map<std::string, Store*> direct_;
  std::unique_ptr<Store> store_;
  std::atomic<int> refreshes_{0};
};
testing::PgInstance* FenceTest::pg_ = nullptr;

TEST_F(FenceTest, AClusterRefusesRowsOfShardsItDoesNotOwn) {
  UserRow u = Row("own", "b");
  // Straight to the wrong cluster, as a node with a wrong map would: the trigger refuses it.
  auto wrong = direct_["a"]->CreateUser(u);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, kWrongShardCode) << wrong.error().message;
  EXPECT_EQ(direct_["a"]->GetUser(u.id, Consistency::kPrimary).error().status(), 404);
  ASSERT_TRUE(store_->CreateUser(u).ok());
  EXPECT_TRUE(direct_["b"]->GetUser(u.id, Consistency::kPrimary).ok());
  EXPECT_EQ(refreshes_.load(), 0) << "a right map needs no re-read";
  // Updates and deletes are fenced too: the owner gives the shard up, and the row is frozen
  // out of every change.
  Sql("b",
      "DELETE FROM shard_ownership WHERE logical = " + std::to_string(ShardOf(u.id) % kLogical));
  auto upd = direct_["b"]->UpdateProfile(u.id, std::nullopt, std::string("x"));
  ASSERT_FALSE(upd.ok());
  EXPECT_EQ(upd.error().code, kWrongShardCode);
}

TEST_F(FenceTest, AStaleMapIsRefusedThenTheMapIsReadAgain) {
  // This node's map puts every shard on `a` (an old version); etcd's is the balanced one.
  ShardMap stale = *fresh_;
  stale.version = 0;
  std::fill(stale.owner.begin(), stale.owner.end(), 0);
  std::atomic_store(&map_, std::make_shared<const ShardMap>(stale));
  UserRow u = Row("stale", "b");
  auto made = store_->CreateUser(u);
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_EQ(refreshes_.load(), 1);
  EXPECT_TRUE(direct_["b"]->GetUser(u.id, Consistency::kPrimary).ok()) << "on its owner";
  EXPECT_FALSE(direct_["a"]->GetUser(u.id, Consistency::kPrimary).ok()) << "never on a";
  // A re-read that brings nothing newer: one retry, then a 503 the client may repeat.
  UserRow v = Row("stale2", "b");
  std::atomic_store(&fresh_, std::make_shared<const ShardMap>(stale));
  std::atomic_store(&map_, std::make_shared<const ShardMap>(stale));
  auto again = store_->CreateUser(v);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "wrong_shard");
  EXPECT_EQ(again.error().status(), 503);
  EXPECT_EQ(refreshes_.load(), 2);
  EXPECT_FALSE(direct_["a"]->GetUser(v.id, Consistency::kPrimary).ok()) << "nothing written";
}

TEST_F(FenceTest, AWriteToAFrozenShardWaitsForTheCutOver) {
  UserRow u = Row("frozen", "a");
  ASSERT_TRUE(store_->CreateUser(u).ok());
  const std::string shard = std::to_string(ShardOf(u.id) % kLogical);
  Sql("a", "UPDATE shard_ownership SET state = 'frozen' WHERE logical = " + shard);
  std::thread thaw([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Sql("a", "UPDATE shard_ownership SET state = 'owned' WHERE logical = " + shard);
  });
  auto t0 = std::chrono::steady_clock::now();
  auto r = store_->UpdateProfile(u.id, std::nullopt, std::string("after"));
  auto waited = std::chrono::steady_clock::now() - t0;
  thaw.join();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->bio, "after");
  EXPECT_GE(waited, std::chrono::milliseconds(250)) << "it waited for the thaw";
  EXPECT_LT(waited, std::chrono::milliseconds(1500));
  // Frozen past the bound: a 503 after about the bound, nothing written.
  Sql("a", "UPDATE shard_ownership SET state = 'frozen' WHERE logical = " + shard);
  t0 = std::chrono::steady_clock::now();
  auto late = store_->UpdateProfile(u.id, std::nullopt, std::string("never"));
  waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, "shard_frozen");
  EXPECT_EQ(late.error().status(), 503);
  EXPECT_GE(waited, std::chrono::milliseconds(1900));
  EXPECT_EQ(direct_["a"]->GetUser(u.id, Consistency::kPrimary)->bio, "after");
}

TEST_F(FenceTest, AFollowAcrossClustersIsWrittenOnBoth) {
  UserRow a = Row("fa", "a"), b = Row("fb", "b");
  ASSERT_TRUE(store_->CreateUser(a).ok());
  ASSERT_TRUE(store_->CreateUser(b).ok());
  ASSERT_TRUE(store_->Follow(a.id, b.id, 5).ok());
  EXPECT_EQ(*direct_["a"]->FollowingIds(a.id, 10, Consistency::kPrimary),
            std::vector<int64_t>{b.id});
  EXPECT_EQ(*direct_["b"]->FollowerIds(b.id, 10, Consistency::kPrimary),
            std::vector<int64_t>{a.id});
  EXPECT_EQ(store_->GetUser(a.id, Consistency::kPrimary)->following, 1);
  EXPECT_EQ(store_->GetUser(b.id, Consistency::kPrimary)->followers, 1);
  // An edge between two users neither of whom the cluster owns is refused.
  UserRow c = Row("fc", "b");
  ASSERT_TRUE(store_->CreateUser(c).ok());
  EXPECT_EQ(direct_["a"]->PutFollowEdge(b.id, c.id, 5).error().code, kWrongShardCode);
}

}  // namespace
}  // namespace millions::data
