// JobStore: the store facet for photo edit jobs (accepted, running, done or failed).
// Sharding routes CreateJob by the job's owner; the others by the job id's shard.
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
  virtual Status MarkJobRunning(int64_t id) = 0;
  // Adds the version to the job's photo and marks the job done, atomically (photo and job
  // share their owner, hence a shard). Finishing twice writes the version once.
  virtual Status FinishJob(int64_t job_id, const PhotoVersion& version, int64_t now_ms) = 0;
  virtual Status FailJob(int64_t job_id, std::string_view error, int64_t now_ms) = 0;
};

}  // namespace millions::data
