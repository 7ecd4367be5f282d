// The sharded store over three real SQLite stores standing in for three clusters: every call
// lands on the cluster the map names, follows are answered on both sides, the feed merges the
// clusters, and a new map version reroutes at once.
#include "data/sharded_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "data/ids.h"

namespace millions::data {
namespace {

constexpr int kLogical = 64;

class ShardedStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("sharded_store_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::map<std::string, std::unique_ptr<Store>> clusters;
    for (const char* name : {"a", "b", "c"}) {
      clusters[name] = OpenSqliteStore((dir_ / (std::string(name) + ".db")).string(), 2);
      direct_[name] = clusters[name].get();
    }
    map_ = std::make_shared<const ShardMap>(
        NextShardMap(*MakeBalancedShardFunction(), {"a", "b", "c"}, kLogical, nullptr));
    store_ = MakeShardedStore([this] { return std::atomic_load(&map_); }, std::move(clusters));
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A user whose handle's shard lives on `cluster` (handles are tried until one does).
  UserRow NewUser(const std::string& prefix, const std::string& cluster) {
    for (int i = 0;; ++i) {
      std::string handle = prefix + std::to_string(i);
      int shard = LogicalShardOfHandle(handle, kLogical);
      if (map_->ClusterOf(shard) != cluster) continue;
      UserRow u;
      u.id = *store_->NewId(shard);
      u.handle = handle;
      u.display_name = handle;
      u.password_hash = "x";
      u.created_ms = 1;
      auto made = store_->CreateUser(u);
      EXPECT_TRUE(made.ok()) << made.error().message;
      return u;
    }
  }
  PhotoRow NewPhoto(int64_t owner) {
    PhotoRow p;
    p.id = *store_->NewId(ShardOf(owner));
    p.owner_id = owner;
    p.media_key = "k" + std::to_string(p.id) + ".png";
    p.content_type = "image/png";
    p.width = p.height = 8;
    p.created_ms = 1;
    EXPECT_TRUE(store_->CreatePhoto(p).ok());
    return p;
  }

  std::filesystem::path dir_;
  std::shared_ptr<const ShardMap> map_;
  std::map<std::string, Store*> direct_;
  std::unique_ptr<Store> store_;
};

TEST_F(ShardedStoreTest, UsersLiveOnTheirClusterAndAreFoundByIdAndHandle) {
  for (const char* cluster : {"a", "b", "c"}) {
    UserRow u = NewUser("user", cluster);
    EXPECT_EQ(map_->ClusterOf(ShardOf(u.id) % kLogical), cluster);
    for (auto& [name, s] : direct_)
      EXPECT_EQ(s->GetUser(u.id, Consistency::kPrimary).ok(), name == cluster) << name;
    EXPECT_EQ(store_->GetUserByHandle(u.handle, Consistency::kReplica)->id, u.id);
    EXPECT_EQ(store_->UpdateProfile(u.id, std::nullopt, std::string("hi"))->bio, "hi");
  }
  // A user whose id does not carry its handle's shard is refused, not misplaced.
  UserRow bad;
  bad.handle = "mismatch";
  bad.id = *store_->NewId((LogicalShardOfHandle("mismatch", kLogical) + 1) % kLogical);
  bad.password_hash = "x";
  EXPECT_EQ(store_->CreateUser(bad).error().code, "id_not_of_handle");
}

TEST_F(ShardedStoreTest, FollowsAcrossClustersAreAnsweredOnBothSides) {
  UserRow a = NewUser("fa", "a"), b = NewUser("fb", "b"), c = NewUser("fc", "c");
  ASSERT_TRUE(store_->Follow(a.id, b.id, 5).ok());
  ASSERT_TRUE(store_->Follow(a.id, c.id, 5).ok());
  ASSERT_TRUE(store_->Follow(c.id, b.id, 5).ok());
  ASSERT_TRUE(store_->Follow(a.id, b.id, 6).ok());  // idempotent
  EXPECT_EQ(*store_->FollowingIds(a.id, 10, Consistency::kReplica),
            (std::vector<int64_t>{std::min(b.id, c.id), std::max(b.id, c.id)}));
  EXPECT_EQ(*store_->FollowerIds(b.id, 10, Consistency::kReplica),
            (std::vector<int64_t>{std::min(a.id, c.id), std::max(a.id, c.id)}));
  auto ua = store_->GetUser(a.id, Consistency::kPrimary);
  auto ub = store_->GetUser(b.id, Consistency::kPrimary);
  EXPECT_EQ(ua->following, 2);
  EXPECT_EQ(ua->followers, 0);
  EXPECT_EQ(ub->followers, 2);
  // The follower's cluster and the followee's each hold the edge; the third does not.
  EXPECT_EQ(direct_["b"]->FollowingIds(a.id, 10, Consistency::kPrimary)->size(), 1u);
  EXPECT_EQ(*direct_["c"]->FollowingIds(a.id, 10, Consistency::kPrimary),
            std::vector<int64_t>{c.id});  // a -> c is there, a -> b is not
  // Following nobody: 404, and no edge anywhere.
  int64_t ghost = *store_->NewId(0);
  EXPECT_EQ(store_->Follow(a.id, ghost, 5).error().status(), 404);
  for (auto& [name, s] : direct_)
    EXPECT_TRUE(s->FollowerIds(ghost, 10, Consistency::kPrimary)->empty()) << name;
  ASSERT_TRUE(store_->Unfollow(a.id, b.id).ok());
  EXPECT_EQ(*store_->FollowerIds(b.id, 10, Consistency::kReplica), std::vector<int64_t>{c.id});
  EXPECT_EQ(store_->GetUser(a.id, Consistency::kPrimary)->following, 1);
}

TEST_F(ShardedStoreTest, FeedMergesEveryClusterNewestFirst) {
  UserRow me = NewUser("me", "a"), b = NewUser("pb", "b"), c = NewUser("pc", "c");
  UserRow a2 = NewUser("pa", "a"), stranger = NewUser("st", "b");
  for (const UserRow* u : {&b, &c, &a2}) ASSERT_TRUE(store_->Follow(me.id, u->id, 1).ok());
  std::vector<int64_t> want;
  for (int i = 0; i < 4; ++i)
    for (const UserRow* u : {&b, &c, &a2, &stranger}) {
      PhotoRow p = NewPhoto(u->id);
      if (u != &stranger) want.push_back(p.id);
    }
  std::sort(want.rbegin(), want.rend());
  auto feed = store_->Feed(me.id, 0, 5, Consistency::kReplica);
  ASSERT_TRUE(feed.ok());
  std::vector<int64_t> got;
  for (const auto& p : *feed) got.push_back(p.id);
  EXPECT_EQ(got, std::vector<int64_t>(want.begin(), want.begin() + 5));
  auto next = store_->Feed(me.id, got.back(), 100, Consistency::kReplica);
  EXPECT_EQ(next->size(), want.size() - 5);
}

TEST_F(ShardedStoreTest, JobsSessionsAndBlobsRoute) {
  UserRow u = NewUser("j", "c");
  PhotoRow p = NewPhoto(u.id);
  EXPECT_EQ(store_->GetPhoto(p.id, Consistency::kReplica)->owner_id, u.id);
  JobRow j{*store_->NewId(ShardOf(u.id)), p.id, u.id, "queued", "[]", "", "", 1, 0, 0};
  ASSERT_TRUE(store_->CreateJob(j).ok());
  EXPECT_TRUE(direct_["c"]->GetJob(j.id, Consistency::kPrimary).ok());
  EXPECT_EQ(*store_->UnfinishedJobs(), std::vector<int64_t>{j.id});
  EXPECT_TRUE(*store_->MarkJobRunning(j.id));
  ASSERT_TRUE(store_->FinishJob(j.id, {j.id, "v.png", 4, 4}, 2).ok());
  EXPECT_EQ(store_->GetJob(j.id, Consistency::kPrimary)->status, "done");
  EXPECT_TRUE(store_->UnfinishedJobs()->empty());

  ASSERT_TRUE(store_->CreateSession({"tokenhash", u.id, 100}).ok());
  EXPECT_EQ(store_->GetSession("tokenhash", 50, Consistency::kReplica)->user_id, u.id);
  ASSERT_TRUE(store_->DeleteSession("tokenhash").ok());
  EXPECT_EQ(store_->GetSession("tokenhash", 50, Consistency::kReplica).error().status(), 404);
  ASSERT_TRUE(store_->PutBlob("blobkey", "image/png", "bytes").ok());
  EXPECT_EQ(store_->GetBlob("blobkey")->bytes, "bytes");
  auto claim = store_->ClaimIdempotencyKey("scope", "k", "fp", 1, 1000);
  ASSERT_TRUE(claim.ok());
  EXPECT_FALSE(claim->has_value());
}

TEST_F(ShardedStoreTest, ANewMapReroutesAtOnceAndAnUnknownClusterIs503) {
  UserRow u = NewUser("m", "a");
  int shard = ShardOf(u.id) % kLogical;
  ShardMap moved = *map_;
  moved.version++;
  moved.owner[shard] = 1;  // to "b", where the user was not copied
  std::atomic_store(&map_, std::make_shared<const ShardMap>(moved));
  EXPECT_EQ(store_->GetUser(u.id, Consistency::kPrimary).error().status(), 404);
  ShardMap unknown = moved;
  unknown.version++;
  unknown.clusters[1] = "d";
  std::atomic_store(&map_, std::make_shared<const ShardMap>(unknown));
  auto r = store_->GetUser(u.id, Consistency::kPrimary);
  EXPECT_EQ(r.error().status(), 503);
  EXPECT_EQ(r.error().code, "unknown_cluster");
}

}  // namespace
}  // namespace millions::data
