#include "app/service.h"

#include <gtest/gtest.h>

#include "app/service_test_util.h"

namespace millions::app {
namespace {

queue::Delivery DeliveryOf(int64_t job_id) {
  queue::Delivery d;
  d.job_id = job_id;
  return d;
}

using data::Consistency;
using testing::ServiceHarness;

constexpr std::string_view kEdit = R"({"ops":[{"op":"grayscale"}]})";

Error PublishTimedOut() {
  return MakeError(Errc::kUnavailable, "queue_unavailable", "publish timed out");
}

// A publish that fails before any worker has the job: 503, and the job is failed for good, so
// that a worker that gets it after all (the message did reach the stream) skips it.
TEST(RequestEditTest, FailedPublishIsA503AndTheJobNeverRuns) {
  ServiceHarness h;
  int64_t job_id = 0;
  h.queue.on_enqueue = [&](int64_t id) -> Status {
    job_id = id;
    return PublishTimedOut();
  };
  auto r = h.service->RequestEdit(ServiceHarness::kOwner, ServiceHarness::kPhoto, kEdit);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status(), 503);
  EXPECT_EQ(r.error().code, "queue_unavailable");
  ASSERT_NE(job_id, 0);
  auto job = h.store->GetJob(job_id, Consistency::kPrimary);
  EXPECT_EQ(job->status, "failed");
  EXPECT_EQ(job->error, "not queued: publish timed out");

  EXPECT_EQ(h.service->ProcessJob(DeliveryOf(job_id)), Service::JobOutcome::kSkipped);
  job = h.store->GetJob(job_id, Consistency::kPrimary);
  EXPECT_EQ(job->status, "failed");
  EXPECT_EQ(job->attempts, 0);
}

// The publish reached the stream but its acknowledgement was lost, and a worker claimed the
// job before the web node gave up on it: the job was accepted after all (202), and is not
// marked failed under the worker.
TEST(RequestEditTest, FailedPublishOfAJobAWorkerClaimedIsAccepted) {
  ServiceHarness h;
  int64_t job_id = 0;
  h.queue.on_enqueue = [&](int64_t id) -> Status {
    job_id = id;
    EXPECT_TRUE(*h.store->MarkJobRunning(id));  // a worker's claim
    return PublishTimedOut();
  };
  auto r = h.service->RequestEdit(ServiceHarness::kOwner, ServiceHarness::kPhoto, kEdit);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("\"id\":\"" + std::to_string(job_id) + "\""), std::string::npos) << *r;
  EXPECT_NE(r->find("\"status\":\"running\""), std::string::npos) << *r;
  auto job = h.store->GetJob(job_id, Consistency::kPrimary);
  EXPECT_EQ(job->status, "running");
  EXPECT_EQ(job->error, "");
}

// The same when the worker had finished the job already: 202 with its result.
TEST(RequestEditTest, FailedPublishOfAJobAWorkerFinishedIsAccepted) {
  ServiceHarness h;
  int64_t job_id = 0;
  h.queue.on_enqueue = [&](int64_t id) -> Status {
    job_id = id;
    EXPECT_TRUE(*h.store->MarkJobRunning(id));
    EXPECT_TRUE(h.store->FinishJob(id, {id, "out.png", 64, 64}, h.env.WallMillis()).ok());
    return PublishTimedOut();
  };
  auto r = h.service->RequestEdit(ServiceHarness::kOwner, ServiceHarness::kPhoto, kEdit);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("\"status\":\"done\""), std::string::npos) << *r;
  EXPECT_NE(r->find("\"result_url\""), std::string::npos) << *r;
  EXPECT_EQ(h.store->GetJob(job_id, Consistency::kPrimary)->status, "done");
  EXPECT_EQ(h.store->GetPhoto(ServiceHarness::kPhoto, Consistency::kPrimary)->versions.size(), 1u);
}

TEST(RequestEditTest, PublishedJobIsAcceptedQueued) {
  ServiceHarness h;
  auto r = h.service->RequestEdit(ServiceHarness::kOwner, ServiceHarness::kPhoto, kEdit);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("\"status\":\"queued\""), std::string::npos) << *r;
  ASSERT_EQ(h.queue.enqueued().size(), 1u);
  EXPECT_EQ(h.store->GetJob(h.queue.enqueued()[0], Consistency::kPrimary)->status, "queued");
}

// The reconciler publishes again an accepted job the queue lost, never one the web node failed
// after its publish failed (the client was told 503).
TEST(ReconcileJobsTest, RepublishesLostJobsButNotFailedOnes) {
  ServiceHarness h;
  std::vector<int64_t> ids;
  h.queue.on_enqueue = [&](int64_t id) -> Status {
    ids.push_back(id);
    if (ids.size() == 1) return PublishTimedOut();
    return Ok();
  };
  ASSERT_FALSE(h.service->RequestEdit(ServiceHarness::kOwner, ServiceHarness::kPhoto, kEdit).ok());
  ASSERT_TRUE(h.service->RequestEdit(ServiceHarness::kOwner, ServiceHarness::kPhoto, kEdit).ok());
  ASSERT_EQ(ids.size(), 2u);
  h.env.Advance(std::chrono::minutes(1));
  auto n = h.service->ReconcileJobs(std::chrono::seconds(30));
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(h.queue.enqueued(), (std::vector<int64_t>{ids[0], ids[1], ids[1]}));
  EXPECT_EQ(h.store->GetJob(ids[0], Consistency::kPrimary)->status, "failed");
}

// A job facet that runs `after_get` once, right after a GetJob: the moment between a worker's
// read of the job and its claim.
class SteppedJobs final : public data::JobStore {
 public:
  SteppedJobs(std::unique_ptr<data::JobStore> real, std::function<void()>* after_get)
      : real_(std::move(real)), after_get_(after_get) {}
  Status CreateJob(const data::JobRow& j) override { return real_->CreateJob(j); }
  Result<data::JobRow> GetJob(int64_t id, Consistency c) override {
    auto r = real_->GetJob(id, c);
    if (*after_get_) std::exchange(*after_get_, nullptr)();
    return r;
  }
  Result<std::vector<int64_t>> UnfinishedJobs() override { return real_->UnfinishedJobs(); }
  Result<bool> MarkJobRunning(int64_t id) override { return real_->MarkJobRunning(id); }
  Status FinishJob(int64_t id, const data::PhotoVersion& v, int64_t now_ms) override {
    return real_->FinishJob(id, v, now_ms);
  }
  Status FailJob(int64_t id, std::string_view error, int64_t now_ms) override {
    return real_->FailJob(id, error, now_ms);
  }
  Result<bool> FailQueuedJob(int64_t id, std::string_view error, int64_t now_ms) override {
    return real_->FailQueuedJob(id, error, now_ms);
  }

 private:
  std::unique_ptr<data::JobStore> real_;
  std::function<void()>* after_get_;
};

// The web node fails the job after a worker read it queued but before the worker claimed it:
// the claim is refused and the job is not run (nor failed again, nor counted as an attempt).
TEST(ProcessJobTest, JobFailedBetweenReadAndClaimIsNotRun) {
  std::function<void()> after_get;
  ServiceHarness h([&](std::unique_ptr<data::JobStore> real) {
    return std::make_unique<SteppedJobs>(std::move(real), &after_get);
  });
  int64_t job_id = 0;
  h.queue.on_enqueue = [&](int64_t id) -> Status {
    job_id = id;
    return Ok();
  };
  ASSERT_TRUE(h.service->RequestEdit(ServiceHarness::kOwner, ServiceHarness::kPhoto, kEdit).ok());
  after_get = [&] { EXPECT_TRUE(*h.store->FailQueuedJob(job_id, "not queued: timeout", 5)); };
  std::string error;
  EXPECT_EQ(h.service->ProcessJob(DeliveryOf(job_id), &error), Service::JobOutcome::kSkipped)
      << error;
  auto job = h.store->GetJob(job_id, Consistency::kPrimary);
  EXPECT_EQ(job->status, "failed");
  EXPECT_EQ(job->error, "not queued: timeout");
  EXPECT_EQ(job->attempts, 0);
}

}  // namespace
}  // namespace millions::app
