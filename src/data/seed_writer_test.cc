// WriteSeed against a real PostgreSQL with two databases standing for two clusters: every user
// lands on its logical shard's cluster, every edge on both ends' clusters, the sharded store
// then reads profiles, counts and photo lists as the web tier would, and a second run inserts
// nothing and says so.
#include "data/seed_writer.h"

#include <gtest/gtest.h>

#include <map>

#include "data/sharded_store.h"
#include "data/store.h"
#include "pg_instance.h"

namespace millions::data {
namespace {

class SeedWriterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pg_ = new testing::PgInstance(); }
  static void TearDownTestSuite() { delete pg_; }
  static testing::PgInstance* pg_;
};
testing::PgInstance* SeedWriterTest::pg_ = nullptr;

TEST_F(SeedWriterTest, LoadsEachClusterItsRowsAndReadsBackThroughTheShardedStore) {
  std::map<std::string, pg::Options> opts;
  std::map<std::string, std::unique_ptr<Store>> stores;
  for (std::string name : {"pga", "pgb"}) {
    opts[name].conninfo = pg_->Conninfo("seed_" + name);
    opts[name].pool_size = 2;
    stores[name] = OpenPgStore(opts[name]);  // migrates the schema
    ASSERT_TRUE(stores[name]->GetUser(1, Consistency::kPrimary).error().kind == Errc::kNotFound);
  }
  auto f = MakeBalancedShardFunction();
  auto map = std::make_shared<const ShardMap>(NextShardMap(*f, {"pga", "pgb"}, 64, nullptr));
  SeedOptions so;
  so.users = 3000;
  so.follows_per_user = 6;
  so.photos_per_user = 1;
  so.now_ms = 1'800'000'000'000;
  so.logical_shards = 64;
  SeedGenerator gen(so);
  SeedWriteOptions wo;
  wo.password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2VlZA$x";
  wo.media = {"0123abcd.png", "image/png", std::string("\x89PNG fake", 9), 4, 3};
  wo.batch_users = 700;  // several batches, the last one short
  int64_t edges = 0;
  std::map<int64_t, int64_t> followers;
  for (int64_t i = 0; i < so.users; ++i)
    for (int64_t f : gen.FolloweesOf(i)) {
      ++edges;
      ++followers[f];
    }
  int64_t users = 0, stored_edges = 0, batches = 0;
  for (const auto& [name, o] : opts) {
    pg::Pool pool(o);
    auto conn = pool.Acquire();
    ASSERT_TRUE(conn.ok());
    wo.progress = [&](const SeedCounts& c) {
      ++batches;
      return c.users_done <= so.users;
    };
    auto c = WriteSeed(gen, *map, name, **conn, wo);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->users_done, so.users);
    EXPECT_EQ(c->skipped, 0);
    users += c->users;
    stored_edges += c->follows;
  }
  EXPECT_EQ(batches, 2 * 5);
  EXPECT_EQ(users, so.users);
  EXPECT_GT(stored_edges, edges) << "an edge between two clusters is stored on both";
  EXPECT_LE(stored_edges, 2 * edges);

  std::map<std::string, std::unique_ptr<Store>> clusters = std::move(stores);
  auto sharded = MakeShardedStore([map] { return map; }, std::move(clusters));
  for (int64_t i : {0, 1, 17, 2999}) {
    const SeedUser want = gen.User(i);
    auto u = sharded->GetUserByHandle(want.handle, Consistency::kPrimary);
    ASSERT_TRUE(u.ok()) << want.handle;
    EXPECT_EQ(u->id, want.id);
    auto by_id = sharded->GetUser(want.id, Consistency::kPrimary);
    ASSERT_TRUE(by_id.ok());
    EXPECT_EQ(by_id->followers, followers[i]) << want.handle;
    EXPECT_EQ(by_id->following, static_cast<int64_t>(gen.FolloweesOf(i).size()));
    auto photos = sharded->ListPhotos(want.id, 0, 10, Consistency::kPrimary);
    ASSERT_TRUE(photos.ok());
    EXPECT_EQ(photos->size(), gen.PhotosOf(i).size());
  }
  // The most followed user is a celebrity, with its count right across both clusters.
  auto top = std::max_element(followers.begin(), followers.end(),
                              [](auto& a, auto& b) { return a.second < b.second; });
  auto celeb = sharded->GetUser(gen.User(top->first).id, Consistency::kPrimary);
  ASSERT_TRUE(celeb.ok());
  EXPECT_EQ(celeb->followers, top->second);
  EXPECT_GT(top->second, 100);

  // Again: nothing new, everything reported as skipped.
  for (const auto& [name, o] : opts) {
    pg::Pool pool(o);
    auto conn = pool.Acquire();
    ASSERT_TRUE(conn.ok());
    wo.progress = nullptr;
    auto c = WriteSeed(gen, *map, name, **conn, wo);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->users + c->follows + c->photos, 0);
    EXPECT_GT(c->skipped, 0);
  }
}

}  // namespace
}  // namespace millions::data
