// The ledger: writes and reads through a service's public URL, recorded so that what the service
// acknowledged can be checked afterwards. Writers (each its own user, logged in with a bearer
// token) upload tiny PNGs whose caption is a token unique to the attempt, sent as the
// Idempotency-Key too; a failed attempt is retried with the same key a bounded number of times,
// and one that never got an answer is "ambiguous" (it may exist, at most once). Readers read
// acknowledged photos back and count failures and latency; each read also loads the photo's bytes
// from its `url` as the page does (the edge, when the topology has one, falling back to the
// public URL), and a read fails when neither answers. After Stop, Observe reads every
// acknowledged photo (within a settle time, so a failover may finish) and lists each writer's
// photos; Tally turns the record and the observation into lost and duplicated writes, and
// ComputeGaps the acknowledgement times into write gaps. Used by `millions chaos matrix` and by
// tests. Traffic goes only to the given loopback (127.x) URL; every wait is bounded.
// Jobs: the first `job_writers` writers also ask for an edit job (grayscale) on each photo they
// uploaded, with an Idempotency-Key of their own, and record each job accepted (202). Observe
// waits (long poll, within the settle time) for every accepted job to end and reads its photo's
// versions; TallyJobs counts a job that never ended `done` (or ended without its version) as
// lost, and a version beyond one per accepted job as duplicated. A 503 is a failed job request;
// one whose job ran all the same is counted apart (ran_after_5xx).
// Test-only: MILLIONS_LEDGER_TEST_FAULT=phantom_ack,duplicate,phantom_job makes the ledger record
// an acknowledgement for a photo never written (one lost write), send each writer's first upload
// twice without its Idempotency-Key (one duplicate per writer), and record an accepted job that
// was never requested (one lost job), to prove the checks can fail.
// Thread-safety: Start, Snapshot, Now and Stop may be called from any one thread while the
// ledger's own threads run; Record and Observe after Stop. The pure functions are reentrant.
// Ownership: a Ledger owns its threads (Stop, or the destructor, joins them).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace millions::ctl {

struct LedgerOptions {
  std::string url;  // the public URL, http://127.x.y.z:port[/]
  int writers = 4;
  int readers = 2;
  std::chrono::milliseconds write_timeout{3000};
  std::chrono::milliseconds read_timeout{2000};
  int write_retries = 10;                          // further tries of one attempt, same key
  std::chrono::milliseconds write_interval{50};    // pause between a writer's attempts
  std::chrono::milliseconds read_interval{25};     // pause between a reader's reads
  std::chrono::milliseconds setup_timeout{30000};  // signing up and logging in the writers
  std::chrono::milliseconds settle{60000};         // Observe: how long read-backs may take
  int job_writers = 0;  // the first N writers also ask for an edit job on each upload
  // A job request waits out the service's publish timeout (5 s) so a queue that is down answers
  // 503 (a failed request) rather than nothing (an ambiguous one).
  std::chrono::milliseconds job_timeout{10000};
};

// One acknowledged write: the photo id the 201 carried, its caption, and when (seconds since
// the ledger started).
struct Ack {
  int writer = 0;
  std::string id, caption;
  double t = 0;
};

// One edit job accepted (202): its photo, its id, when (ledger seconds), and the wall-clock ms
// at which the accepted request was sent, to compare with the job's finished_at.
struct JobAck {
  int writer = 0;
  std::string photo_id, job_id;
  double t = 0;
  int64_t wall_ms = 0;
};

// What the ledger saw while it ran.
struct LedgerRecord {
  std::vector<Ack> acks;
  std::vector<std::pair<int, std::string>> ambiguous;  // writer, caption: never answered
  uint64_t attempts = 0;                               // distinct write attempts (captions)
  uint64_t failed_writes = 0;            // requests that failed (each try of an attempt counts)
  uint64_t rejected = 0;                 // attempts refused for good (a 4xx other than 408/409/429)
  uint64_t reads = 0, failed_reads = 0;  // a read fails on its photo or on the photo's bytes
  // Photo bytes read from the photo's `url`, and those read from the public URL after that URL
  // (an edge) failed, as the page falls back.
  uint64_t media_reads = 0, media_fallbacks = 0;
  std::vector<double> read_ms;       // latency of every read (the photo's JSON)
  double stopped_at = 0;             // seconds since start
  std::vector<JobAck> jobs;          // accepted edit jobs
  uint64_t job_requests = 0;         // distinct job requests (one per photo)
  uint64_t failed_job_requests = 0;  // requests that failed (each try counts; 503 included)
  // Photos whose job request was refused (a 4xx: no job may run), answered 5xx (a failed
  // request; the outcome of a 503 may be unknown, e.g. a publish whose acknowledgement was lost,
  // so at most one job may have run) or never answered (at most one job may exist).
  std::vector<std::string> refused_job_photos, unavailable_job_photos, ambiguous_job_photos;
};

// A job as Observe last saw it: status "" when it could not be read at all.
struct JobSeen {
  std::string status, error;
  int64_t finished_wall_ms = -1;
};

// What verification found in the service afterwards.
struct LedgerObserved {
  std::set<std::string> readable;                  // acknowledged captions read back (200)
  std::vector<std::map<std::string, int>> listed;  // per writer: caption -> times listed
  std::vector<bool> listed_ok;                     // per writer: every page was read
  std::map<std::string, JobSeen> jobs;             // job id -> as last seen
  // photo id -> job id -> versions of the photo made by that job (photos with a job request)
  std::map<std::string, std::map<std::string, int>> versions;
};

struct LedgerVerdict {
  int acknowledged = 0;
  int lost = 0;        // acknowledged, then unreadable or missing from its owner's list
  int duplicated = 0;  // captions listed more than once
  int ambiguous = 0;
  int ambiguous_written = 0;  // ambiguous attempts that exist (once)
  std::vector<std::string> lost_captions, duplicated_captions;  // the first few, for the log
};

LedgerVerdict Tally(const LedgerRecord& record, const LedgerObserved& observed);

struct JobVerdict {
  int accepted = 0;
  int lost = 0;           // accepted, then never `done`, or done with no version on its photo
  int duplicated = 0;     // versions beyond one per accepted job, none for a 4xx, one for a 5xx
  int ran_after_5xx = 0;  // job requests answered 5xx whose job ran all the same
  int ambiguous = 0;      // job requests never answered
  double p99_s = 0;       // the accepted request sent -> finished_at, over the jobs done
  std::vector<std::string> lost_jobs, duplicated_jobs;  // the first few: "job id (why)"
};

JobVerdict TallyJobs(const LedgerRecord& record, const LedgerObserved& observed);

// Milliseconds since the epoch of an RFC 3339 UTC time as the service writes it
// (2026-01-02T03:04:05.678Z); -1 when it is not one.
int64_t ParseRfc3339Ms(const std::string& text);

struct WriteGaps {
  double fault_gap_s = 0;  // longest interval between acknowledgements across the fault
  double max_gap_s = 0;    // longest interval between consecutive acknowledgements overall
};

// ack_times in seconds (any order). The fault window runs from the last acknowledgement at or
// before fault_at (fault_at itself when none) to the first at or after recovered_at; when
// there is none, up to stopped_at (an outage that never ended). recovered_at < 0: none.
WriteGaps ComputeGaps(std::vector<double> ack_times, double fault_at, double recovered_at,
                      double stopped_at);

// The host and port of an http://127.x.y.z:port URL; an error for any other URL.
Result<std::pair<std::string, int>> ParseLoopbackUrl(const std::string& url);

// The value at fraction p (0..1) of a sorted vector; 0 when empty.
double Percentile(const std::vector<double>& sorted, double p);

class Ledger {
 public:
  // Signs up and logs in the writers, then starts the writer and reader threads.
  static Result<std::unique_ptr<Ledger>> Start(const LedgerOptions& options);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  double Now() const;  // seconds since the ledger started
  struct Progress {
    uint64_t acked = 0, failed_writes = 0, reads = 0, failed_reads = 0, jobs = 0;
    double last_ack = -1;  // seconds since start; -1 before the first
  };
  Progress Snapshot() const;
  void Stop();                     // ends the threads (an attempt in retry ends ambiguous)
  LedgerRecord Record() const;     // after Stop
  LedgerObserved Observe() const;  // after Stop; bounded by options.settle

 private:
  struct Writer {
    std::string user_id, token;
  };
  explicit Ledger(LedgerOptions o);
  Status SignUp();
  void WriteLoop(int w);
  void ReadLoop(int r);
  struct MediaRead {
    bool ok = false;
    uint64_t tried = 0, fell_back = 0;
  };
  MediaRead ReadMedia(const std::string& url);
  // Asks for an edit job on `photo_id` (retried with its key while unanswered) and records it.
  void RequestJob(int w, const std::string& photo_id, const std::string& caption);
  void ObserveJobs(std::chrono::steady_clock::time_point deadline, LedgerObserved* out) const;

  LedgerOptions o_;
  std::string host_;
  int port_ = 0;
  std::string tag_;  // unique to this ledger: prefix of handles and captions
  bool phantom_ack_ = false, duplicate_ = false, phantom_job_ = false;
  std::chrono::steady_clock::time_point start_;
  std::vector<Writer> writers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> acked_{0}, failed_writes_{0}, reads_{0}, failed_reads_{0};
  std::atomic<double> last_ack_{-1};
  std::atomic<uint64_t> jobs_accepted_{0}, failed_jobs_{0};
  mutable std::mutex mu_;  // guards record_, phantom_done_ and phantom_job_done_
  LedgerRecord record_;
  bool phantom_done_ = false, phantom_job_done_ = false;
};

}  // namespace millions::ctl
