// The JetStream queue against a real nats-server (tests/support/nats_instance.h): each test
// starts its own server on a free loopback port.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "core/log.h"
#include "nats_instance.h"
#include "queue/job_queue.h"

namespace millions::queue {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

NatsOptions Options(const testing::NatsInstance& n) {
  NatsOptions o;
  o.servers = {n.url()};
  o.ack_wait = milliseconds(600);
  o.max_deliver = 3;
  o.request_timeout = milliseconds(5000);
  return o;
}

// Dequeues until `want` jobs came or `limit` passed.
std::vector<Delivery> Drain(JobQueue& q, size_t want, milliseconds limit, bool ack = true) {
  std::vector<Delivery> got;
  auto end = Clock::now() + limit;
  while (got.size() < want && Clock::now() < end) {
    auto d = q.Dequeue(milliseconds(200));
    if (!d) continue;
    got.push_back(*d);
    if (ack) {
      EXPECT_TRUE(q.Ack(d->job_id).ok());
    }
  }
  return got;
}

TEST(NatsQueueTest, DeliversEachJobOnceAndDeduplicatesPublishes) {
  testing::NatsInstance nats;
  auto q = OpenNatsQueue(Options(nats));
  for (int64_t id = 1; id <= 20; ++id) ASSERT_TRUE(q->Enqueue(id).ok());
  ASSERT_TRUE(q->Enqueue(5).ok());  // the same job again, within the window: one message
  auto got = Drain(*q, 21, milliseconds(3000));
  std::set<int64_t> ids;
  for (auto& d : got) {
    EXPECT_TRUE(ids.insert(d.job_id).second) << "delivered twice: " << d.job_id;
    EXPECT_EQ(d.attempt, 1);
    EXPECT_FALSE(d.last);
  }
  EXPECT_EQ(ids.size(), 20u);
  // The backlog is counted in the background: it reaches 0 within a few refreshes.
  auto end = Clock::now() + milliseconds(5000);
  int64_t backlog = q->Backlog();
  while (backlog != 0 && Clock::now() < end) {
    std::this_thread::sleep_for(milliseconds(200));
    backlog = q->Backlog();
  }
  EXPECT_EQ(backlog, 0);
}

TEST(NatsQueueTest, AJobCarriesTheIdsOfTheRequestThatMadeIt) {
  testing::NatsInstance nats;
  auto q = OpenNatsQueue(Options(nats));
  {
    log::ScopedContext ctx({"req-1", "0af7651916cd43dd8448eb211c80319c"});
    ASSERT_TRUE(q->Enqueue(1).ok());
  }
  ASSERT_TRUE(q->Enqueue(2).ok());  // no request: no ids
  auto got = Drain(*q, 2, milliseconds(3000));
  ASSERT_EQ(got.size(), 2u);
  for (const auto& d : got) {
    EXPECT_EQ(d.request_id, d.job_id == 1 ? "req-1" : "") << d.job_id;
    EXPECT_EQ(d.trace_id, d.job_id == 1 ? "0af7651916cd43dd8448eb211c80319c" : "") << d.job_id;
  }
}

TEST(NatsQueueTest, HoldsAJobUntilItIsAcked) {
  testing::NatsInstance nats;
  auto q = OpenNatsQueue(Options(nats));
  EXPECT_EQ(q->Holds(7), std::optional<bool>(false));
  ASSERT_TRUE(q->Enqueue(7).ok());
  EXPECT_EQ(q->Holds(7), std::optional<bool>(true));
  auto d = q->Dequeue(milliseconds(2000));
  ASSERT_TRUE(d);
  EXPECT_EQ(q->Holds(7), std::optional<bool>(true));  // in hand is still held
  ASSERT_TRUE(q->Ack(7).ok());
  EXPECT_EQ(q->Holds(7), std::optional<bool>(false));
}

TEST(NatsQueueTest, AJobInTheHandsOfADeadWorkerIsDeliveredAgain) {
  testing::NatsInstance nats;
  auto a = OpenNatsQueue(Options(nats));
  ASSERT_TRUE(a->Enqueue(42).ok());
  auto d = a->Dequeue(milliseconds(2000));
  ASSERT_TRUE(d);
  a.reset();  // the worker dies holding it: no ack
  auto b = OpenNatsQueue(Options(nats));
  auto t0 = Clock::now();
  auto got = Drain(*b, 1, milliseconds(5000));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].job_id, 42);
  EXPECT_EQ(got[0].attempt, 2);
  EXPECT_GE(Clock::now() - t0, milliseconds(300));  // not before AckWait (600 ms, less setup)
}

TEST(NatsQueueTest, ProgressKeepsALongJobFromBeingRedelivered) {
  testing::NatsInstance nats;
  auto a = OpenNatsQueue(Options(nats));
  auto b = OpenNatsQueue(Options(nats));
  ASSERT_TRUE(a->Enqueue(9).ok());
  ASSERT_TRUE(a->Dequeue(milliseconds(2000)));
  // Three AckWaits long, with progress every third of one: b must never see it.
  auto end = Clock::now() + milliseconds(1800);
  while (Clock::now() < end) {
    ASSERT_TRUE(a->Progress(9).ok());
    EXPECT_FALSE(b->Dequeue(milliseconds(200))) << "a job in progress was delivered again";
  }
  ASSERT_TRUE(a->Ack(9).ok());
  EXPECT_FALSE(b->Dequeue(milliseconds(1500)));
}

TEST(NatsQueueTest, RetriesWaitTheirDelayAndTheLastDeliveryIsMarked) {
  testing::NatsInstance nats;
  auto q = OpenNatsQueue(Options(nats));  // max_deliver 3
  ASSERT_TRUE(q->Enqueue(11).ok());
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto t0 = Clock::now();
    auto d = q->Dequeue(milliseconds(3000));
    ASSERT_TRUE(d) << "attempt " << attempt;
    if (attempt > 1) {
      EXPECT_GE(Clock::now() - t0, milliseconds(250));
    }
    EXPECT_EQ(d->attempt, attempt);
    EXPECT_EQ(d->last, attempt == 3);
    if (attempt < 3) {
      ASSERT_TRUE(q->Retry(11, milliseconds(300)).ok());
    }
  }
  ASSERT_TRUE(q->DeadLetter(11, "poison \"image\"").ok());
  EXPECT_EQ(q->Holds(11), std::optional<bool>(false));
  EXPECT_FALSE(q->Dequeue(milliseconds(1500)));
}

TEST(NatsQueueTest, LosesNoJobWhenTheServerRestarts) {
  testing::NatsInstance nats;
  auto q = OpenNatsQueue(Options(nats));
  for (int64_t id = 1; id <= 10; ++id) ASSERT_TRUE(q->Enqueue(id).ok());
  nats.Restart();
  // Publishes made while the client reconnects wait for it (within request_timeout).
  for (int64_t id = 11; id <= 20; ++id) ASSERT_TRUE(q->Enqueue(id).ok()) << id;
  auto got = Drain(*q, 20, milliseconds(15000));
  std::set<int64_t> ids;
  for (auto& d : got) ids.insert(d.job_id);
  EXPECT_EQ(ids.size(), 20u);
}

TEST(NatsQueueTest, AnUnreachableServerIsA503NotAHang) {
  testing::NatsInstance nats;
  NatsOptions o = Options(nats);
  o.request_timeout = milliseconds(500);
  nats.Kill();
  auto q = OpenNatsQueue(o);  // connects in the background: no throw
  auto t0 = Clock::now();
  Status st = q->Enqueue(1);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().status(), 503);
  EXPECT_LT(Clock::now() - t0, milliseconds(3000));
  EXPECT_FALSE(q->Dequeue(milliseconds(100)));
  nats.Start();
  // Back: the same queue object works again.
  auto end = Clock::now() + milliseconds(10000);
  while (!q->Enqueue(2).ok() && Clock::now() < end) std::this_thread::sleep_for(milliseconds(200));
  auto got = Drain(*q, 1, milliseconds(5000));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].job_id, 2);
}

}  // namespace
}  // namespace millions::queue
