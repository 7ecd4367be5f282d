#include "app/workers.h"

#include <gtest/gtest.h>

#include "app/service_test_util.h"

namespace millions::app {
namespace {

using data::Consistency;
using testing::ServiceHarness;

// A delivery of a job the web node failed (its publish timed out, its client was told 503) is
// acked without running: not dead-lettered, not retried, counted as skipped.
TEST(WorkersTest, DeliveryOfAFailedJobIsAckedWithoutRunning) {
  ServiceHarness h;
  int64_t job_id = 0;
  h.queue.on_enqueue = [&](int64_t id) -> Status {
    job_id = id;
    return MakeError(Errc::kUnavailable, "queue_unavailable", "publish timed out");
  };
  auto r = h.service->RequestEdit(ServiceHarness::kOwner, ServiceHarness::kPhoto,
                                  R"({"ops":[{"op":"grayscale"}]})");
  ASSERT_FALSE(r.ok());
  Workers workers(*h.service, h.queue, h.metrics, WorkerOptions{.threads = 1});
  workers.Start();
  queue::Delivery d;
  d.job_id = job_id;
  h.queue.Deliver(d);
  ASSERT_TRUE(h.queue.WaitSettled(std::chrono::seconds(10)));
  workers.Stop();
  EXPECT_EQ(h.queue.acked(), std::vector<int64_t>{job_id});
  EXPECT_TRUE(h.queue.dead().empty());
  EXPECT_TRUE(h.queue.retried().empty());
  auto& skipped = h.metrics.GetCounter("millions_jobs_skipped_total", "", {{"kind", "edit"}});
  EXPECT_EQ(skipped.value(), 1);
  auto job = h.store->GetJob(job_id, Consistency::kPrimary);
  EXPECT_EQ(job->status, "failed");
  EXPECT_EQ(job->attempts, 0);
}

}  // namespace
}  // namespace millions::app
