// JobStore: the store facet for photo edit jobs (accepted, running, done or failed).
// Sharding routes CreateJob by the job's owner; the others by the job id's shard.
// A job's status only moves queued -> running -> done | failed (or queued -> failed); the
// conditional writes below (MarkJobRunning, FailQueuedJob) are what settle the race between a
// web node whose publish failed and a worker that got the message all the same: whichever
// writes first wins, and the other sees it (docs/queue.md).
// Errors: Result/Status; 404 not_found, 503 when the database is unavailable.
// Thread-safety: every method may be called from any thread; calls block (run them on a
// BlockingPool). Ownership: an implementation owns or shares its connections.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "data/rows.h"

namespace millions::data {

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Routed by job.owner_id.
  virtual Status CreateJob(const JobRow& job) = 0;
  virtual Result<JobRow> GetJob(int64_t id, Consistency c) = 0;
  // Jobs that were accepted and have not finished: re-enqueued at start-up, so that a crash
  // between accepting a job and queueing it loses nothing. A sharded store asks every shard.
  virtual Result<std::vector<int64_t>> UnfinishedJobs() = 0;
  // A worker claims the job before it runs it: marks it running and counts the attempt, from
  // `queued`, or from `running` (a redelivery after a worker died or its lease ran out).
  // Returns false, changing nothing, when the job is finished (`done`, or `failed`: e.g. by
  // the web node whose publish failed) or unknown: the caller must not run it.
  virtual Result<bool> MarkJobRunning(int64_t id) = 0;
  // Adds the version to the job's photo and marks the job done, atomically (photo and job
  // share their owner, hence a shard). Finishing twice writes the version once.
  virtual Status FinishJob(int64_t job_id, const PhotoVersion& version, int64_t now_ms) = 0;
  // A worker gives up on the job (bad input, last delivery, poison image, dead letter): marks
  // it failed whether queued or running. A job already done keeps its result (a no-op).
  virtual Status FailJob(int64_t job_id, std::string_view error, int64_t now_ms) = 0;
  // The web node after a publish that failed: fails the job only while it is still `queued`,
  // in one conditional write. True when it did (the job will never run); false when it was no
  // longer queued (a worker got the message and claimed it: the job was accepted after all)
  // or is unknown.
  virtual Result<bool> FailQueuedJob(int64_t job_id, std::string_view error, int64_t now_ms) = 0;
};

}  // namespace millions::data
