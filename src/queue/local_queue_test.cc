#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "queue/job_queue.h"

namespace millions::queue {
namespace {

using std::chrono::milliseconds;

class LocalQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() / ("queue_test_" + std::to_string(getpid()));
    std::filesystem::remove(path_);
    q_ = OpenLocalQueue(path_.string(), Env::Default());
  }
  void TearDown() override {
    q_.reset();
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }
  std::filesystem::path path_;
  std::unique_ptr<JobQueue> q_;
};

TEST_F(LocalQueueTest, DeliversInOrderOnceUntilAcked) {
  ASSERT_TRUE(q_->Enqueue(1).ok());
  ASSERT_TRUE(q_->Enqueue(2).ok());
  ASSERT_TRUE(q_->Enqueue(1).ok());  // duplicate: no-op
  EXPECT_EQ(q_->Backlog(), 2);
  auto a = q_->Dequeue(milliseconds(10));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->job_id, 1);
  EXPECT_EQ(a->attempt, 1);
  auto b = q_->Dequeue(milliseconds(10));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->job_id, 2);
  EXPECT_FALSE(q_->Dequeue(milliseconds(10)));  // both leased
  ASSERT_TRUE(q_->Ack(1).ok());
  ASSERT_TRUE(q_->Retry(2, milliseconds(0)).ok());
  auto again = q_->Dequeue(milliseconds(10));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->job_id, 2);
  EXPECT_EQ(again->attempt, 2);
}

TEST_F(LocalQueueTest, LeasedJobsComeBackAfterRestart) {
  ASSERT_TRUE(q_->Enqueue(7).ok());
  ASSERT_TRUE(q_->Dequeue(milliseconds(10)));
  q_.reset();  // the process "dies" holding the lease
  q_ = OpenLocalQueue(path_.string(), Env::Default());
  auto d = q_->Dequeue(milliseconds(10));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->job_id, 7);
}

// The waits below are far longer than a wake-up needs (milliseconds): a waiter that missed its
// notify sleeps to its deadline, and the elapsed bound (a tenth of it) catches that, however
// loaded the machine.
TEST_F(LocalQueueTest, EnqueueWakesAWaitingWorker) {
  std::optional<Delivery> got;
  auto start = std::chrono::steady_clock::now();
  std::thread t([&] { got = q_->Dequeue(milliseconds(30000)); });
  std::this_thread::sleep_for(milliseconds(50));
  ASSERT_TRUE(q_->Enqueue(3).ok());
  t.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->job_id, 3);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
}

TEST_F(LocalQueueTest, CloseWakesWaiters) {
  auto start = std::chrono::steady_clock::now();
  std::thread t([&] { EXPECT_FALSE(q_->Dequeue(milliseconds(30000))); });
  std::this_thread::sleep_for(milliseconds(50));
  q_->Close();
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
}

// A waiter planning to sleep to its deadline wakes for a retry that comes due sooner.
TEST_F(LocalQueueTest, WaiterWakesWhenADelayedRetryComesDue) {
  ASSERT_TRUE(q_->Enqueue(5).ok());
  ASSERT_TRUE(q_->Dequeue(milliseconds(10)));
  std::optional<Delivery> got;
  auto start = std::chrono::steady_clock::now();
  std::thread t([&] { got = q_->Dequeue(milliseconds(30000)); });
  std::this_thread::sleep_for(milliseconds(50));
  ASSERT_TRUE(q_->Retry(5, milliseconds(200)).ok());
  t.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->job_id, 5);
  EXPECT_EQ(got->attempt, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
}

TEST_F(LocalQueueTest, DelayedRetryIsInvisibleUntilDue) {
  ASSERT_TRUE(q_->Enqueue(4).ok());
  ASSERT_TRUE(q_->Dequeue(milliseconds(10)));
  ASSERT_TRUE(q_->Retry(4, milliseconds(300)).ok());
  EXPECT_FALSE(q_->Dequeue(milliseconds(50)));
  EXPECT_TRUE(q_->Dequeue(milliseconds(2000)));
}

}  // namespace
}  // namespace millions::queue
