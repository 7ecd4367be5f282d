#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "pg_instance.h"
#include "queue/job_queue.h"

namespace millions::queue {
namespace {

using std::chrono::milliseconds;

class PgQueueTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pg_ = new testing::PgInstance(); }
  static void TearDownTestSuite() { delete pg_; }
  pg::Options Options() {
    static int n = 0;
    pg::Options o;
    o.conninfo = pg_->Conninfo("queue_test_" + std::to_string(++n));
    o.pool_size = 2;
    return o;
  }
  static testing::PgInstance* pg_;
};
testing::PgInstance* PgQueueTest::pg_ = nullptr;

TEST_F(PgQueueTest, TwoNodesNeverTakeTheSameJob) {
  auto opts = Options();
  auto a = OpenPgQueue(opts, Env::Default(), milliseconds(60000));
  auto b = OpenPgQueue(opts, Env::Default(), milliseconds(60000));
  for (int64_t id = 1; id <= 40; ++id) ASSERT_TRUE((id % 2 ? a : b)->Enqueue(id).ok());
  ASSERT_TRUE(a->Enqueue(1).ok());  // duplicate: no-op
  EXPECT_EQ(a->Backlog(), 40);
  std::set<int64_t> seen;
  std::mutex mu;
  auto drain = [&](JobQueue* q) {
    while (auto d = q->Dequeue(milliseconds(100))) {
      std::lock_guard lock(mu);
      EXPECT_TRUE(seen.insert(d->job_id).second) << "delivered twice: " << d->job_id;
      EXPECT_TRUE(q->Ack(d->job_id).ok());
    }
  };
  std::thread t1(drain, a.get()), t2(drain, b.get());
  t1.join();
  t2.join();
  EXPECT_EQ(seen.size(), 40u);
  EXPECT_EQ(a->Backlog(), 0);
}

TEST_F(PgQueueTest, AJobHeldByADeadNodeComesBackAfterItsLease) {
  auto opts = Options();
  auto dead = OpenPgQueue(opts, Env::Default(), milliseconds(300));
  auto alive = OpenPgQueue(opts, Env::Default(), milliseconds(300));
  ASSERT_TRUE(dead->Enqueue(9).ok());
  auto d = dead->Dequeue(milliseconds(100));
  ASSERT_TRUE(d);
  dead.reset();  // never acks
  EXPECT_FALSE(alive->Dequeue(milliseconds(50)));
  auto again = alive->Dequeue(milliseconds(3000));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->job_id, 9);
  EXPECT_EQ(again->attempt, 2);
}

TEST_F(PgQueueTest, RetryDelaysDelivery) {
  auto q = OpenPgQueue(Options(), Env::Default(), milliseconds(60000));
  ASSERT_TRUE(q->Enqueue(5).ok());
  ASSERT_TRUE(q->Dequeue(milliseconds(100)));
  ASSERT_TRUE(q->Retry(5, milliseconds(300)).ok());
  EXPECT_FALSE(q->Dequeue(milliseconds(50)));
  EXPECT_TRUE(q->Dequeue(milliseconds(3000)));
}

TEST_F(PgQueueTest, UnreachableDatabaseFailsStartUpClearly) {
  pg::Options o;
  o.conninfo = "host=127.0.0.1 port=" + std::to_string(testing::PgInstance::FreePort()) +
               " user=millions dbname=x";
  o.connect_timeout_s = 1;
  EXPECT_THROW(OpenPgQueue(o, Env::Default(), milliseconds(1000)), std::runtime_error);
}

}  // namespace
}  // namespace millions::queue
