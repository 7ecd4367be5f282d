#include "data/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "core/env.h"
#include "core/log.h"
#include "data/ids.h"
#include "pg_instance.h"

namespace millions::data {
namespace {

// The same contract tests run against every Store: SQLite (stage 1) and PostgreSQL (a real
// server, started once for the suite, a fresh database per test).
enum class Backend { kSqlite, kPostgres };

testing::PgInstance* Pg() {
  static testing::PgInstance* pg = new testing::PgInstance();  // stopped by the environment
  return pg;
}

class PgEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { delete Pg(); }
};
const auto* const kPgEnv = ::testing::AddGlobalTestEnvironment(new PgEnvironment);

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    static int n = 0;
    ++n;
    if (GetParam() == Backend::kSqlite) {
      dir_ = std::filesystem::temp_directory_path() /
             ("store_test_" + std::to_string(getpid()) + "_" + std::to_string(n));
      std::filesystem::create_directories(dir_);
    } else {
      pg_options_.conninfo = Pg()->Conninfo("store_test_" + std::to_string(n));
      pg_options_.pool_size = 3;
    }
    store_ = Open();
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<Store> Open() {
    if (GetParam() == Backend::kSqlite) return OpenSqliteStore((dir_ / "db.sqlite").string(), 2);
    return OpenPgStore(pg_options_);
  }
  UserRow User(int64_t id, std::string handle) {
    UserRow u;
    u.id = id;
    u.handle = std::move(handle);
    u.display_name = u.handle;
    u.password_hash = "h";
    u.created_ms = 1;
    return u;
  }
  static JobRow QueuedJob(int64_t id) { return {id, 10, 1, "queued", "[]", "", "", 1, 0, 0}; }
  std::filesystem::path dir_;
  pg::Options pg_options_;
  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
                         });

// IDs name the shard asked for, sort by time and never repeat, also many in one millisecond
// (the sequence's 1024 values per shard per millisecond; PostgreSQL draws from one sequence).
TEST_P(StoreTest, NewIdsNameTheirShardAndAreUnique) {
  std::set<int64_t> seen;
  for (int shard : {0, 1, 517, 8191}) {
    for (int i = 0; i < 300; ++i) {
      auto id = store_->NewId(shard);
      ASSERT_TRUE(id.ok()) << id.error().message;
      EXPECT_EQ(ShardOf(*id), shard);
      EXPECT_GT(*id, 0);
      EXPECT_TRUE(seen.insert(*id).second) << "repeated id " << *id;
    }
  }
  auto a = store_->NewId(3);
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  auto b = store_->NewId(3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_LT(*a, *b);
  EXPECT_NEAR(double(MillisOf(*b)), double(Env::Default().WallMillis()), 60'000);
}

TEST_P(StoreTest, UsersAndHandleConflict) {
  ASSERT_TRUE(store_->CreateUser(User(1, "alice")).ok());
  auto dup = store_->CreateUser(User(2, "alice"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "handle_taken");
  EXPECT_EQ(store_->GetUserByHandle("alice", Consistency::kReplica)->id, 1);
  EXPECT_EQ(store_->GetUser(9, Consistency::kReplica).error().status(), 404);
  auto up = store_->UpdateProfile(1, std::nullopt, std::string("hi"));
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->bio, "hi");
  EXPECT_EQ(up->display_name, "alice");
}

TEST_P(StoreTest, FollowsCountsAndFeed) {
  ASSERT_TRUE(store_->CreateUser(User(1, "alice")).ok());
  ASSERT_TRUE(store_->CreateUser(User(2, "bob")).ok());
  ASSERT_TRUE(store_->Follow(2, 1, 5).ok());
  ASSERT_TRUE(store_->Follow(2, 1, 5).ok());  // idempotent
  EXPECT_EQ(store_->Follow(2, 99, 5).error().status(), 404);
  for (int64_t id : {10, 11, 12}) {
    PhotoRow p;
    p.id = id;
    p.owner_id = 1;
    p.media_key = "k";
    p.content_type = "image/png";
    ASSERT_TRUE(store_->CreatePhoto(p).ok());
  }
  auto alice = store_->GetUser(1, Consistency::kPrimary);
  EXPECT_EQ(alice->followers, 1);
  EXPECT_EQ(alice->photos, 3);
  auto feed = store_->Feed(2, 0, 2, Consistency::kReplica);
  ASSERT_EQ(feed->size(), 2u);
  EXPECT_EQ((*feed)[0].id, 12);
  auto next = store_->Feed(2, 11, 10, Consistency::kReplica);
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].id, 10);
  ASSERT_TRUE(store_->Unfollow(2, 1).ok());
  EXPECT_TRUE(store_->Feed(2, 0, 10, Consistency::kReplica)->empty());
}

// The sharded store's copy of an edge: no user need exist here; twice is once; Unfollow drops it.
TEST_P(StoreTest, PutFollowEdgeNeedsNoUsersAndIsIdempotent) {
  ASSERT_TRUE(store_->PutFollowEdge(70, 80, 1).ok());
  ASSERT_TRUE(store_->PutFollowEdge(70, 80, 2).ok());
  EXPECT_EQ(*store_->FollowerIds(80, 10, Consistency::kPrimary), std::vector<int64_t>{70});
  EXPECT_EQ(*store_->FollowingIds(70, 10, Consistency::kPrimary), std::vector<int64_t>{80});
  ASSERT_TRUE(store_->Unfollow(70, 80).ok());
  EXPECT_TRUE(store_->FollowerIds(80, 10, Consistency::kPrimary)->empty());
}

TEST_P(StoreTest, SessionsExpire) {
  ASSERT_TRUE(store_->CreateSession({"th", 1, 100}).ok());
  EXPECT_TRUE(store_->GetSession("th", 50, Consistency::kPrimary).ok());
  EXPECT_FALSE(store_->GetSession("th", 100, Consistency::kPrimary).ok());
  ASSERT_TRUE(store_->DeleteSession("th").ok());
  EXPECT_FALSE(store_->GetSession("th", 50, Consistency::kPrimary).ok());
}

TEST_P(StoreTest, JobsFinishOnceAndSurviveReopen) {
  PhotoRow p;
  p.id = 10;
  p.owner_id = 1;
  p.media_key = "k";
  p.content_type = "image/png";
  ASSERT_TRUE(store_->CreatePhoto(p).ok());
  ASSERT_TRUE(store_->CreateJob({20, 10, 1, "queued", "[]", "", "", 1, 0, 0}).ok());
  ASSERT_TRUE(store_->CreateJob({21, 10, 1, "queued", "[]", "", "", 1, 0, 0}).ok());
  ASSERT_TRUE(*store_->MarkJobRunning(20));
  store_ = Open();  // reopen: nothing lost, migrations not applied twice
  EXPECT_EQ(*store_->UnfinishedJobs(), (std::vector<int64_t>{20, 21}));
  ASSERT_TRUE(store_->FinishJob(20, {20, "v1", 5, 6}, 9).ok());
  ASSERT_TRUE(store_->FinishJob(20, {20, "v1", 5, 6}, 9).ok());
  ASSERT_TRUE(store_->FailJob(21, "boom", 9).ok());
  auto photo = store_->GetPhoto(10, Consistency::kPrimary);
  ASSERT_EQ(photo->versions.size(), 1u);
  EXPECT_EQ(photo->versions[0].media_key, "v1");
  EXPECT_EQ(store_->GetJob(20, Consistency::kPrimary)->status, "done");
  EXPECT_EQ(store_->GetJob(21, Consistency::kPrimary)->error, "boom");
  EXPECT_TRUE(store_->UnfinishedJobs()->empty());
}

// The race of a failed publish (docs/queue.md): the web node fails the job only while it is
// queued; a worker claims it only while it is not finished. Whichever writes first wins.
TEST_P(StoreTest, FailQueuedJobOnlyFailsAQueuedJob) {
  for (int64_t id : {30, 31, 32}) ASSERT_TRUE(store_->CreateJob(QueuedJob(id)).ok());
  ASSERT_TRUE(*store_->MarkJobRunning(31));
  ASSERT_TRUE(*store_->MarkJobRunning(32));
  ASSERT_TRUE(store_->FinishJob(32, {32, "v32", 5, 6}, 9).ok());
  auto queued = store_->FailQueuedJob(30, "not queued: timeout", 9);
  ASSERT_TRUE(queued.ok());
  EXPECT_TRUE(*queued);
  auto running = store_->FailQueuedJob(31, "not queued: timeout", 9);
  ASSERT_TRUE(running.ok());
  EXPECT_FALSE(*running);
  auto done = store_->FailQueuedJob(32, "not queued: timeout", 9);
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE(*done);
  EXPECT_FALSE(*store_->FailQueuedJob(39, "not queued: timeout", 9));  // unknown
  auto j30 = store_->GetJob(30, Consistency::kPrimary);
  EXPECT_EQ(j30->status, "failed");
  EXPECT_EQ(j30->error, "not queued: timeout");
  EXPECT_EQ(j30->finished_ms, 9);
  auto j31 = store_->GetJob(31, Consistency::kPrimary);
  EXPECT_EQ(j31->status, "running");
  EXPECT_EQ(j31->error, "");
  auto j32 = store_->GetJob(32, Consistency::kPrimary);
  EXPECT_EQ(j32->status, "done");
  EXPECT_EQ(j32->result_key, "v32");
}

TEST_P(StoreTest, MarkJobRunningRefusesAFinishedJob) {
  for (int64_t id : {40, 41, 42}) ASSERT_TRUE(store_->CreateJob(QueuedJob(id)).ok());
  ASSERT_TRUE(*store_->FailQueuedJob(40, "not queued: timeout", 9));
  ASSERT_TRUE(*store_->MarkJobRunning(41));
  ASSERT_TRUE(store_->FinishJob(41, {41, "v41", 5, 6}, 9).ok());
  auto failed = store_->MarkJobRunning(40);
  ASSERT_TRUE(failed.ok());
  EXPECT_FALSE(*failed);
  auto done = store_->MarkJobRunning(41);
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE(*done);
  EXPECT_FALSE(*store_->MarkJobRunning(49));  // unknown
  // Claimed from queued, and again from running (a redelivery): each attempt counted.
  EXPECT_TRUE(*store_->MarkJobRunning(42));
  EXPECT_TRUE(*store_->MarkJobRunning(42));
  auto j40 = store_->GetJob(40, Consistency::kPrimary);
  EXPECT_EQ(j40->status, "failed");
  EXPECT_EQ(j40->attempts, 0);
  auto j41 = store_->GetJob(41, Consistency::kPrimary);
  EXPECT_EQ(j41->status, "done");
  EXPECT_EQ(j41->attempts, 1);
  auto j42 = store_->GetJob(42, Consistency::kPrimary);
  EXPECT_EQ(j42->status, "running");
  EXPECT_EQ(j42->attempts, 2);
}

// A worker's give-up (dead letter, poison image) fails a queued or running job; a job already
// done keeps its result.
TEST_P(StoreTest, FailJobFailsUnlessDone) {
  for (int64_t id : {50, 51, 52}) ASSERT_TRUE(store_->CreateJob(QueuedJob(id)).ok());
  ASSERT_TRUE(*store_->MarkJobRunning(51));
  ASSERT_TRUE(*store_->MarkJobRunning(52));
  ASSERT_TRUE(store_->FinishJob(52, {52, "v52", 5, 6}, 9).ok());
  for (int64_t id : {50, 51, 52}) ASSERT_TRUE(store_->FailJob(id, "gave up", 11).ok());
  EXPECT_EQ(store_->GetJob(50, Consistency::kPrimary)->status, "failed");
  EXPECT_EQ(store_->GetJob(51, Consistency::kPrimary)->status, "failed");
  EXPECT_EQ(store_->GetJob(51, Consistency::kPrimary)->error, "gave up");
  auto j52 = store_->GetJob(52, Consistency::kPrimary);
  EXPECT_EQ(j52->status, "done");
  EXPECT_EQ(j52->error, "");
  EXPECT_EQ(j52->finished_ms, 9);
}

TEST_P(StoreTest, BlobsAreContentAddressed) {
  ASSERT_TRUE(store_->PutBlob("abc", "image/png", std::string("\0x\0", 3)).ok());
  ASSERT_TRUE(store_->PutBlob("abc", "image/png", "other").ok());
  auto b = store_->GetBlob("abc");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->bytes, std::string("\0x\0", 3));
  EXPECT_EQ(store_->GetBlob("nope").error().status(), 404);
}

}  // namespace
}  // namespace millions::data

namespace millions::data {
namespace {

// One debug line per store operation, under the request's ids, naming the member that served
// it; none at the default level.
TEST_P(StoreTest, LogsEachOperationAtDebugUnderTheRequestIds) {
  ASSERT_TRUE(store_->CreateUser(User(1, "alice")).ok());
  log::Init("test", "web", log::Level::kDebug);
  ::testing::internal::CaptureStderr();
  {
    log::ScopedContext scope({"req-store-1", "trace-store-1"});
    ASSERT_TRUE(store_->UpdateProfile(1, std::nullopt, std::string("hi")).ok());
    EXPECT_FALSE(store_->GetJob(99, Consistency::kPrimary).ok());
  }
  log::Init("test", "web", log::Level::kInfo);
  ASSERT_TRUE(store_->GetUser(1, Consistency::kReplica).ok());
  std::istringstream out(::testing::internal::GetCapturedStderr());
  std::vector<std::string> ops;
  for (std::string line; std::getline(out, line);)
    if (line.find("\"msg\":\"store op\"") != std::string::npos) ops.push_back(line);
  ASSERT_EQ(ops.size(), 2u);  // UpdateProfile's write and re-read are one operation
  const std::string member = GetParam() == Backend::kSqlite ? "sqlite" : "pg";
  for (const auto& line : ops) {
    EXPECT_NE(line.find("\"request_id\":\"req-store-1\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"trace_id\":\"trace-store-1\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"member\":\"" + member + "\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"duration_ms\":"), std::string::npos) << line;
  }
  EXPECT_NE(ops[0].find("\"op\":\"update_profile\""), std::string::npos) << ops[0];
  EXPECT_NE(ops[0].find("\"ok\":true"), std::string::npos) << ops[0];
  EXPECT_NE(ops[1].find("\"op\":\"get_job\""), std::string::npos) << ops[1];
  EXPECT_NE(ops[1].find("\"error\":\"not_found\""), std::string::npos) << ops[1];
}

TEST_P(StoreTest, IdempotencyKeys) {
  // First claim runs the request; a second sees it in progress; after Finish it replays.
  auto first = store_->ClaimIdempotencyKey("tok", "k1", "fp", 1000, 60000);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->has_value());
  auto busy = store_->ClaimIdempotencyKey("tok", "k1", "fp", 1001, 60000);
  ASSERT_TRUE(busy.ok() && busy->has_value());
  EXPECT_EQ((*busy)->status, 0);
  ASSERT_TRUE(store_->FinishIdempotencyKey("tok", "k1", 201, "{\"id\":\"7\"}").ok());
  auto replay = store_->ClaimIdempotencyKey("tok", "k1", "fp", 1002, 60000);
  ASSERT_TRUE(replay.ok() && replay->has_value());
  EXPECT_EQ((*replay)->status, 201);
  EXPECT_EQ((*replay)->body, "{\"id\":\"7\"}");
  EXPECT_EQ((*replay)->fingerprint, "fp");
  // Keys are per scope.
  auto other = store_->ClaimIdempotencyKey("other", "k1", "fp", 1003, 60000);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  // A released claim can be claimed again; a stale one is taken over; finished ones never.
  ASSERT_TRUE(store_->ReleaseIdempotencyKey("other", "k1").ok());
  EXPECT_FALSE(store_->ClaimIdempotencyKey("other", "k1", "fp", 1004, 60000)->has_value());
  EXPECT_TRUE(store_->ClaimIdempotencyKey("other", "k1", "fp", 2000, 60000)->has_value());
  EXPECT_FALSE(store_->ClaimIdempotencyKey("other", "k1", "fp", 70000, 60000)->has_value());
  EXPECT_TRUE(store_->ClaimIdempotencyKey("other", "k1", "other-fp", 200000, 60000)
                  ->has_value());  // a different request never takes a claim over
  EXPECT_EQ((*store_->ClaimIdempotencyKey("tok", "k1", "fp", 900000, 60000))->status, 201);
}

}  // namespace
}  // namespace millions::data
