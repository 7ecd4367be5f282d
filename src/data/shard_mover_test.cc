// ShardMover on real PostgreSQL (two databases of one server standing for two clusters): one
// logical shard moves from `a` to `b` while writers keep changing it through the sharded store;
// every acknowledged write is found afterwards, on `b` only; the verify sees a corrupted row; a
// write to a shard that is not moving adds nothing to shard_changes; the SQL hash that routes
// sessions, idempotency keys and blobs is the C++ one.
#include "data/shard_mover.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "core/stable_hash.h"
#include "data/ids.h"
#include "data/shard_fence.h"
#include "data/sharded_store.h"
#include "data/store.h"
#include "pg_instance.h"

namespace millions::data {
namespace {

constexpr int kLogical = 64;

class ShardMoverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pg_ = new testing::PgInstance(); }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }

  void SetUp() override {
    static int n = 0;
    ++n;
    // Every shard on `a`; `b` a new cluster that the map does not name yet.
    ShardMap m;
    m.version = 1;
    m.clusters = {"a", "b"};
    m.owner.assign(kLogical, 0);
    map_ = std::make_shared<const ShardMap>(m);
    etcd_ = map_;
    std::map<std::string, std::unique_ptr<Store>> clusters;
    for (const char* name : {"a", "b"}) {
      pg::Options o;
      o.conninfo = pg_->Conninfo("mover_" + std::string(name) + std::to_string(n));
      o.pool_size = 4;
      options_[name] = o;
      ShardMap only_a = m;
      only_a.clusters = {"a"};
      auto written = PrepareShardCluster(o, only_a, name);
      ASSERT_TRUE(written.ok()) << written.error().message;
      EXPECT_EQ(*written, name[0] == 'a' ? kLogical : 0);
      clusters[name] = OpenPgStore(o);
      direct_[name] = clusters[name].get();
      pg::Options mine = o;
      mine.conninfo += " application_name=millions-reshard-test";
      mine.pool_size = 2;
      mover_pool_[name] = std::make_unique<pg::Pool>(mine);
    }
    ShardedStoreOptions so;
    so.map = [this] { return std::atomic_load(&map_); };
    so.refresh = [this] { std::atomic_store(&map_, std::atomic_load(&etcd_)); };
    so.frozen_wait = std::chrono::milliseconds(3000);
    store_ = MakeShardedStore(std::move(so), std::move(clusters));
  }

  void Publish(int moved, int to) {
    ShardMap next = *std::atomic_load(&etcd_);
    next.owner[size_t(moved)] = static_cast<uint16_t>(to);
    ++next.version;
    std::atomic_store(&etcd_, std::make_shared<const ShardMap>(next));
  }

  std::string One(const std::string& cluster, const std::string& sql) {
    auto c = mover_pool_[cluster]->Acquire();
    EXPECT_TRUE(c.ok());
    auto r =
        (*c)->Exec(("q" + std::to_string(std::hash<std::string>{}(sql))).c_str(), sql.c_str(), {});
    EXPECT_TRUE(r.ok()) << sql << ": " << r.error().message;
    return r.ok() && !r->empty() ? r->Text(0, 0) : "";
  }

  // A user of logical shard `shard` (a handle that hashes there), created through the store.
  UserRow NewUser(const std::string& prefix, int shard) {
    for (int i = 0;; ++i) {
      std::string handle = prefix + std::to_string(i);
      if (LogicalShardOfHandle(handle, kLogical) != shard) continue;
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

  static std::string KeyOfShard(const std::string& prefix, int shard) {
    for (int i = 0;; ++i) {
      std::string k = prefix + std::to_string(i);
      if (LogicalShardOfKey(k, kLogical) == shard) return k;
    }
  }

  PhotoRow NewPhoto(int64_t owner, const std::string& caption) {
    PhotoRow p;
    p.id = *store_->NewId(ShardOf(owner));
    p.owner_id = owner;
    p.caption = caption;
    p.media_key = "m.png";
    p.content_type = "image/png";
    p.width = 2;
    p.height = 2;
    p.created_ms = 5;
    EXPECT_TRUE(store_->CreatePhoto(p).ok());
    return p;
  }

  static testing::PgInstance* pg_;
  std::shared_ptr<const ShardMap> map_, etcd_;
  std::map<std::string, pg::Options> options_;
  std::map<std::string, Store*> direct_;
  std::map<std::string, std::unique_ptr<pg::Pool>> mover_pool_;
  std::unique_ptr<Store> store_;
};
testing::PgInstance* ShardMoverTest::pg_ = nullptr;

TEST_F(ShardMoverTest, TheSqlHashIsStableHash) {
  std::string keys;
  std::vector<std::string> samples = {"",
                                      "a",
                                      "-",
                                      "abc",
                                      std::string(64, 'f'),
                                      "h\xc3\xa9llo",
                                      "0123456789abcdef0123456789abcdef0123456789abcdef"};
  for (int i = 0; i < 50; ++i) samples.push_back("key" + std::to_string(i * 7919));
  for (const auto& k : samples) {
    const std::string lit = "'" + k + "'";
    EXPECT_EQ(One("a", "SELECT millions_stable_hash(" + lit + ")"),
              std::to_string(static_cast<int64_t>(StableHash(k))))
        << k;
  }
  // The logical count is 64 here (PrepareShardCluster set it).
  for (const auto& k : samples)
    EXPECT_EQ(One("a", "SELECT millions_key_shard('" + k + "')"),
              std::to_string(LogicalShardOfKey(k, kLogical)))
        << k;
}

TEST_F(ShardMoverTest, OnlyAMovingShardIsCaptured) {
  UserRow still = NewUser("still", 3), moving = NewUser("moving", 5);
  auto src = mover_pool_["a"]->Acquire();
  auto dst = mover_pool_["b"]->Acquire();
  ASSERT_TRUE(src.ok() && dst.ok());
  MoverOptions mo;
  mo.logical_shards = kLogical;
  ShardMover mover(**src, **dst, 5, mo);
  ASSERT_TRUE(mover.PrepareTarget(1).ok());
  ASSERT_TRUE(mover.StartCapture(1).ok());
  ASSERT_TRUE(store_->UpdateProfile(still.id, std::nullopt, std::string("x")).ok());
  EXPECT_EQ(One("a", "SELECT count(*) FROM shard_changes"), "0") << "shard 3 is not moving";
  ASSERT_TRUE(store_->UpdateProfile(moving.id, std::nullopt, std::string("y")).ok());
  EXPECT_EQ(One("a", "SELECT count(*) FROM shard_changes WHERE logical = 5"), "1");
  // The target refuses the shard to everyone but the copier.
  UserRow direct = moving;
  direct.id += 1;
  direct.handle += "x";
  auto refused = direct_["b"]->CreateUser(direct);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, kWrongShardCode);
}

TEST_F(ShardMoverTest, AnEdgeAStaleNodeWritesAfterTheCutOverReachesTheNewOwner) {
  UserRow stays = NewUser("edge_stays", 3), moves = NewUser("edge_moves", 5);
  auto src = mover_pool_["a"]->Acquire();
  auto dst = mover_pool_["b"]->Acquire();
  ASSERT_TRUE(src.ok() && dst.ok());
  MoverOptions mo;
  mo.logical_shards = kLogical;
  ShardMover mover(**src, **dst, 5, mo);
  ASSERT_TRUE(mover.PrepareTarget(1).ok());
  ASSERT_TRUE(mover.StartCapture(1).ok());
  ASSERT_TRUE(mover.Copy().ok());
  ASSERT_TRUE(mover.Freeze().ok());
  ASSERT_TRUE(mover.MarkTargetOwned(2).ok());
  ASSERT_TRUE(mover.DropSource(2).ok());
  Publish(5, 1);
  // A node that still maps both users to `a` writes the edge there alone (one statement, as
  // for two users of one cluster): taken, since `a` owns the follower, and captured.
  ASSERT_TRUE(direct_["a"]->Follow(stays.id, moves.id, 1).ok());
  auto before = direct_["b"]->FollowerIds(moves.id, 10, Consistency::kPrimary);
  ASSERT_TRUE(before.ok()) << before.error().message;
  EXPECT_TRUE(before->empty()) << "not on the followee's new cluster yet";
  // The clean-up replays it there before it deletes the shard's rows from `a`.
  auto cleaned = mover.Cleanup(0);
  ASSERT_TRUE(cleaned.ok()) << cleaned.error().message;
  auto after = direct_["b"]->FollowerIds(moves.id, 10, Consistency::kPrimary);
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(*after, std::vector<int64_t>{stays.id});
  std::atomic_store(&map_, std::atomic_load(&etcd_));  // the node's poll
  auto followee = store_->GetUser(moves.id, Consistency::kPrimary);
  auto follower = store_->GetUser(stays.id, Consistency::kPrimary);
  ASSERT_TRUE(followee.ok() && follower.ok());
  EXPECT_EQ(followee->followers, 1);
  EXPECT_EQ(follower->following, 1);
}

TEST_F(ShardMoverTest, MovesAShardUnderWritesAndLosesNone) {
  constexpr int kShard = 9;
  // The shard's users, with a photo each, a job, follows both ways with a user that stays,
  // sessions, an idempotency key and a blob whose keys hash to it.
  std::vector<UserRow> users;
  for (int i = 0; i < 4; ++i) users.push_back(NewUser("mv" + std::to_string(i) + "_", kShard));
  UserRow stays = NewUser("stays", 2);
  std::vector<PhotoRow> photos;
  for (const auto& u : users) photos.push_back(NewPhoto(u.id, "first"));
  JobRow job;
  job.id = *store_->NewId(kShard);
  job.photo_id = photos[0].id;
  job.owner_id = users[0].id;
  job.status = "queued";
  job.ops_json = "[]";
  job.created_ms = 1;
  ASSERT_TRUE(store_->CreateJob(job).ok());
  ASSERT_TRUE(store_->FinishJob(job.id, {job.id, "v.png", 1, 1}, 9).ok());
  ASSERT_TRUE(store_->Follow(users[0].id, stays.id, 1).ok());
  ASSERT_TRUE(store_->Follow(stays.id, users[1].id, 1).ok());
  ASSERT_TRUE(store_->Follow(users[2].id, users[3].id, 1).ok());
  const std::string token = KeyOfShard("tok", kShard), scope = KeyOfShard("scope", kShard),
                    blob = KeyOfShard("blob", kShard);
  ASSERT_TRUE(store_->CreateSession({token, users[0].id, 1'000'000'000'000'000}).ok());
  ASSERT_TRUE(store_->ClaimIdempotencyKey(scope, "k1", "fp", 1, 60'000).ok());
  ASSERT_TRUE(store_->FinishIdempotencyKey(scope, "k1", 201, "{}").ok());
  ASSERT_TRUE(store_->PutBlob(blob, "image/png", std::string("\x89PNG\0\1\2\\\t\n", 11)).ok());

  // Writers through the store for the whole move: bios counted up, photos added, follows
  // toggled, sessions made. What was acknowledged is the ledger.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<int64_t, int> bio;                   // user -> last acknowledged counter
  std::vector<int64_t> new_photos;              // acknowledged
  std::map<std::string, int64_t> new_sessions;  // token -> user
  std::atomic<int> failures{0}, writes{0};
  std::vector<std::thread> writers;
  struct Join {  // an ASSERT that returns early still stops and joins the writers
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~Join() {
      stop = true;
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } join{stop, writers};
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 1; !stop; ++i) {
        const UserRow& u = users[size_t(w)];  // one writer per user: its last ack is the bio
        auto r = store_->UpdateProfile(u.id, std::nullopt, std::to_string(i));
        if (!r.ok()) {
          ADD_FAILURE() << "update: " << r.error().code << " " << r.error().message;
          ++failures;
          continue;
        }
        {
          std::lock_guard lock(mu);
          bio[u.id] = i;
        }
        if (i % 3 == 0) {
          PhotoRow p;
          p.id = *store_->NewId(kShard);
          p.owner_id = u.id;
          p.caption = "w" + std::to_string(w);
          p.media_key = "m.png";
          p.content_type = "image/png";
          p.created_ms = i;
          if (Status st = store_->CreatePhoto(p); st.ok()) {
            std::lock_guard lock(mu);
            new_photos.push_back(p.id);
          } else {
            ++failures;
            ADD_FAILURE() << "photo: " << st.error().message;
          }
        }
        if (i % 5 == 0) {
          const std::string t = "w" + std::to_string(w) + "t" + std::to_string(i);
          if (Status st = store_->CreateSession({t, u.id, 1'000'000'000'000'000}); st.ok()) {
            std::lock_guard lock(mu);
            new_sessions[t] = u.id;
          } else {
            ++failures;
            ADD_FAILURE() << "session: " << st.error().message;
          }
        }
        if (i % 7 == 0) {
          Status st = (i / 7) % 2 ? store_->Unfollow(users[2].id, users[3].id)
                                  : store_->Follow(users[2].id, users[3].id, i);
          if (!st.ok()) ++failures;
        }
        ++writes;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }
  auto src = mover_pool_["a"]->Acquire();
  auto dst = mover_pool_["b"]->Acquire();
  ASSERT_TRUE(src.ok() && dst.ok());
  MoverOptions mo;
  mo.logical_shards = kLogical;
  ShardMover mover(**src, **dst, kShard, mo);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(mover.PrepareTarget(1).ok());
  ASSERT_TRUE(mover.StartCapture(1).ok());
  auto copied = mover.Copy();
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  EXPECT_EQ(copied->users, 4);
  EXPECT_GT(copied->rows, 4 + 4 + 1 + 1 + 3 + 1 + 1 + 1);
  int64_t seq = 0;
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    auto r = mover.Replay(seq);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_GT(r->changes, 0) << "the writers changed the shard meanwhile";
    EXPECT_GT(r->applied_seq, seq);
    seq = r->applied_seq;
  }
  const auto frozen_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(mover.Freeze().ok());
  auto last = mover.Replay(seq);
  ASSERT_TRUE(last.ok()) << last.error().message;
  auto verified = mover.Verify();
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_TRUE(verified->ok()) << verified->mismatches.front();
  EXPECT_EQ(verified->users, 4);
  ASSERT_TRUE(mover.MarkTargetOwned(2).ok());
  Publish(kShard, 1);
  ASSERT_TRUE(mover.DropSource(2).ok());
  const auto pause = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - frozen_at);
  std::printf("write pause %lld ms, %lld rows copied, %lld changes replayed last\n",
              static_cast<long long>(pause.count()), static_cast<long long>(copied->rows),
              static_cast<long long>(last->changes));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0) << "writes wait through the cut-over, none fails";
  EXPECT_GT(writes.load(), 30);
  auto cleaned = mover.Cleanup(last->applied_seq);
  ASSERT_TRUE(cleaned.ok()) << cleaned.error().message;
  EXPECT_GT(*cleaned, 10);

  // Everything acknowledged is there, through the store (now on `b`), and nothing of the shard
  // is left on `a` but the edge towards the user who stays there.
  for (const auto& u : users) {
    auto got = store_->GetUser(u.id, Consistency::kPrimary);
    ASSERT_TRUE(got.ok());
    auto on_b = direct_["b"]->GetUser(u.id, Consistency::kPrimary);
    ASSERT_TRUE(on_b.ok()) << "on b";
    EXPECT_FALSE(direct_["a"]->GetUser(u.id, Consistency::kPrimary).ok()) << "not on a";
    std::lock_guard lock(mu);
    if (bio.count(u.id)) {
      EXPECT_EQ(on_b->bio, std::to_string(bio[u.id])) << "the last write";
    }
  }
  for (int64_t id : new_photos) {
    EXPECT_TRUE(direct_["b"]->GetPhoto(id, Consistency::kPrimary).ok()) << id;
    EXPECT_FALSE(direct_["a"]->GetPhoto(id, Consistency::kPrimary).ok()) << id;
  }
  for (const auto& [t, uid] : new_sessions) {
    auto s = store_->GetSession(t, 1, Consistency::kPrimary);
    ASSERT_TRUE(s.ok()) << t;
    EXPECT_EQ(s->user_id, uid);
  }
  auto session = store_->GetSession(token, 1, Consistency::kPrimary);
  ASSERT_TRUE(session.ok());
  EXPECT_EQ(session->user_id, users[0].id);
  auto claim = store_->ClaimIdempotencyKey(scope, "k1", "fp", 2, 60'000);
  ASSERT_TRUE(claim.ok() && claim->has_value());
  EXPECT_EQ((*claim)->status, 201);
  auto b = store_->GetBlob(blob);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->bytes, std::string("\x89PNG\0\1\2\\\t\n", 11)) << "bytes survive the copy";
  EXPECT_FALSE(direct_["a"]->GetBlob(blob).ok());
  auto job_b = direct_["b"]->GetJob(job.id, Consistency::kPrimary);
  ASSERT_TRUE(job_b.ok());
  EXPECT_EQ(job_b->status, "done");
  auto p0 = store_->GetPhoto(photos[0].id, Consistency::kPrimary);
  ASSERT_TRUE(p0.ok());
  EXPECT_EQ(p0->versions.size(), 1u);
  // Follows: the edge to `stays` (on a) is on both clusters; counts right on both users.
  auto u0 = store_->GetUser(users[0].id, Consistency::kPrimary);
  EXPECT_EQ(u0->following, 1);
  auto st = store_->GetUser(stays.id, Consistency::kPrimary);
  EXPECT_EQ(st->followers, 1);
  EXPECT_EQ(st->following, 1);
  auto u1 = store_->GetUser(users[1].id, Consistency::kPrimary);
  EXPECT_EQ(u1->followers, 1);
  const std::string bits = "((id >> 10) & 8191) % 64 = " + std::to_string(kShard);
  EXPECT_EQ(One("a", "SELECT count(*) FROM users WHERE " + bits), "0");
  EXPECT_EQ(One("a", "SELECT count(*) FROM photos WHERE " + bits), "0");
  EXPECT_EQ(One("a", "SELECT count(*) FROM follows"), "2") << "a keeps the edges of `stays`";
  EXPECT_EQ(One("a", "SELECT count(*) FROM shard_changes"), "0");
  EXPECT_EQ(One("a", "SELECT count(*) FROM shard_ownership WHERE logical = 9"), "0");
  EXPECT_EQ(One("b", "SELECT state FROM shard_ownership WHERE logical = 9"), "owned");
  // No session of the moved shard is left on `a`; those of other shards are.
  auto left = (*src)->Exec("left_sessions", "SELECT token_hash FROM sessions", {});
  ASSERT_TRUE(left.ok());
  int moved_left = 0;
  for (int i = 0; i < left->size(); ++i)
    moved_left += LogicalShardOfKey(left->Text(i, 0), kLogical) == kShard;
  EXPECT_EQ(moved_left, 0);
  EXPECT_GT(left->size(), 0);
}

TEST_F(ShardMoverTest, VerifyFindsADifferenceAndACopyRepairsIt) {
  constexpr int kShard = 11;
  std::vector<UserRow> users;
  for (int i = 0; i < 3; ++i) users.push_back(NewUser("vf" + std::to_string(i) + "_", kShard));
  PhotoRow p = NewPhoto(users[1].id, "original");
  auto src = mover_pool_["a"]->Acquire();
  auto dst = mover_pool_["b"]->Acquire();
  ASSERT_TRUE(src.ok() && dst.ok());
  MoverOptions mo;
  mo.logical_shards = kLogical;
  ShardMover mover(**src, **dst, kShard, mo);
  ASSERT_TRUE(mover.PrepareTarget(1).ok());
  ASSERT_TRUE(mover.StartCapture(1).ok());
  ASSERT_TRUE(mover.Copy().ok());
  auto good = mover.Verify();
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(good->ok());
  // A row changed behind the copier's back on the target (with the copier's own setting: the
  // fence refuses anyone else), and one lost: both seen, by user.
  auto c = mover_pool_["b"]->Acquire();
  ASSERT_TRUE((*c)->Simple("BEGIN").ok());
  ASSERT_TRUE((*c)->Simple("SET LOCAL millions.reshard = 'on'").ok());
  ASSERT_TRUE(
      (*c)->Simple(
              ("UPDATE photos SET caption = 'tampered' WHERE id = " + std::to_string(p.id)).c_str())
          .ok());
  ASSERT_TRUE(
      (*c)->Simple(("DELETE FROM users WHERE id = " + std::to_string(users[2].id)).c_str()).ok());
  ASSERT_TRUE((*c)->Simple("COMMIT").ok());
  auto bad = mover.Verify();
  ASSERT_TRUE(bad.ok());
  ASSERT_EQ(bad->mismatches.size(), 2u);
  EXPECT_NE(bad->mismatches[0].find("users of " + std::to_string(users[2].id)), std::string::npos)
      << bad->mismatches[0];
  EXPECT_NE(bad->mismatches[1].find("photos of " + std::to_string(users[1].id)), std::string::npos)
      << bad->mismatches[1];
  // Nothing changed on the source, so a replay does not help; a copy does.
  auto r = mover.Replay(0);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(mover.Verify()->ok());
  ASSERT_TRUE(mover.PrepareTarget(1).ok());
  ASSERT_TRUE(mover.Copy().ok());
  EXPECT_TRUE(mover.Verify()->ok());
}

}  // namespace
}  // namespace millions::data
