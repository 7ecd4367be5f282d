// The ledger's pure parts (ctl/ledger.h): the verdicts over what was acknowledged and what was
// read back, and the small parsers the ledger and its tests share. No I/O.
#include <arpa/inet.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ctl/ledger.h"

namespace millions::ctl {

LedgerVerdict Tally(const LedgerRecord& record, const LedgerObserved& observed) {
  LedgerVerdict v;
  v.acknowledged = static_cast<int>(record.acks.size());
  v.ambiguous = static_cast<int>(record.ambiguous.size());
  auto listed = [&](int w, const std::string& caption) {
    if (w < 0 || static_cast<size_t>(w) >= observed.listed.size()) return 0;
    auto it = observed.listed[w].find(caption);
    return it == observed.listed[w].end() ? 0 : it->second;
  };
  for (const Ack& a : record.acks) {
    if (observed.readable.count(a.caption) && listed(a.writer, a.caption) > 0) continue;
    ++v.lost;
    if (v.lost_captions.size() < 10) v.lost_captions.push_back(a.caption);
  }
  for (const auto& per_writer : observed.listed)
    for (const auto& [caption, n] : per_writer)
      if (n > 1) {
        ++v.duplicated;
        if (v.duplicated_captions.size() < 10) v.duplicated_captions.push_back(caption);
      }
  for (const auto& [w, caption] : record.ambiguous)
    if (listed(w, caption) > 0) ++v.ambiguous_written;
  return v;
}

WriteGaps ComputeGaps(std::vector<double> t, double fault_at, double recovered_at,
                      double stopped_at) {
  std::sort(t.begin(), t.end());
  WriteGaps g;
  for (size_t i = 1; i < t.size(); ++i) g.max_gap_s = std::max(g.max_gap_s, t[i] - t[i - 1]);
  // The window: from the last ack at or before the fault to the first at or after recovery.
  auto after = std::upper_bound(t.begin(), t.end(), fault_at);
  double prev = after == t.begin() ? fault_at : *(after - 1);
  bool closed = false;
  for (auto it = after; it != t.end(); ++it) {
    g.fault_gap_s = std::max(g.fault_gap_s, *it - prev);
    prev = *it;
    if (recovered_at >= 0 && *it >= recovered_at) {
      closed = true;
      break;
    }
  }
  if (!closed) g.fault_gap_s = std::max(g.fault_gap_s, stopped_at - prev);
  g.max_gap_s = std::max(g.max_gap_s, g.fault_gap_s);
  return g;
}

Result<std::pair<std::string, int>> ParseLoopbackUrl(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return MakeError(Errc::kBadInput, "bad_url", "ledger URL " + url + ": " + why);
  };
  if (url.rfind("http://", 0) != 0) return bad("only http:// URLs");
  std::string rest = url.substr(7);
  rest = rest.substr(0, rest.find('/'));
  size_t colon = rest.rfind(':');
  std::string host = rest.substr(0, colon);
  int port = 80;
  if (colon != std::string::npos) {
    char* end = nullptr;
    long p = std::strtol(rest.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535) return bad("bad port");
    port = static_cast<int>(p);
  }
  in_addr addr{};
  if (inet_pton(AF_INET, host.c_str(), &addr) != 1 ||
      reinterpret_cast<const unsigned char*>(&addr.s_addr)[0] != 127)
    return bad("the ledger only sends to loopback addresses (127.x.y.z)");
  return std::make_pair(host, port);
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(sorted.size() * p))];
}

JobVerdict TallyJobs(const LedgerRecord& record, const LedgerObserved& observed) {
  JobVerdict v;
  v.accepted = static_cast<int>(record.jobs.size());
  v.ambiguous = static_cast<int>(record.ambiguous_job_photos.size());
  auto note = [](std::vector<std::string>* to, std::string why) {
    if (to->size() < 10) to->push_back(std::move(why));
  };
  auto made = [&](const std::string& photo, const std::string& job) {
    auto p = observed.versions.find(photo);
    if (p == observed.versions.end()) return 0;
    auto j = p->second.find(job);
    return j == p->second.end() ? 0 : j->second;
  };
  std::map<std::string, std::set<std::string>> accepted_on;  // photo -> its accepted jobs
  for (const JobAck& j : record.jobs) accepted_on[j.photo_id].insert(j.job_id);
  std::vector<double> latency;
  for (const JobAck& j : record.jobs) {
    auto seen = observed.jobs.find(j.job_id);
    JobSeen js = seen == observed.jobs.end() ? JobSeen{} : seen->second;
    if (js.status != "done") {
      ++v.lost;
      note(&v.lost_jobs, j.job_id + " (" + (js.status.empty() ? "unreadable" : js.status) +
                             (js.error.empty() ? "" : ": " + js.error) + ")");
      continue;
    }
    int n = made(j.photo_id, j.job_id);
    if (n == 0) {
      ++v.lost;
      note(&v.lost_jobs, j.job_id + " (done, no version on photo " + j.photo_id + ")");
      continue;
    }
    if (n > 1) {
      v.duplicated += n - 1;
      note(&v.duplicated_jobs, j.job_id + " (" + std::to_string(n) + " versions)");
    }
    if (js.finished_wall_ms >= 0)
      latency.push_back(std::max<int64_t>(0, js.finished_wall_ms - j.wall_ms) / 1000.0);
  }
  // Versions made by jobs the ledger was never told were accepted: none may exist on a photo
  // whose request was refused (4xx), one may on a photo whose request went unanswered or was
  // answered 5xx (counted apart: the service says such a job never runs).
  std::set<std::string> ambiguous(record.ambiguous_job_photos.begin(),
                                  record.ambiguous_job_photos.end());
  std::set<std::string> unavailable(record.unavailable_job_photos.begin(),
                                    record.unavailable_job_photos.end());
  for (const auto& [photo, by_job] : observed.versions) {
    auto acc = accepted_on.find(photo);
    int extra = 0;
    for (const auto& [job, n] : by_job)
      if (acc == accepted_on.end() || !acc->second.count(job)) extra += n;
    int allowed = ambiguous.count(photo) || unavailable.count(photo) ? 1 : 0;
    if (extra > 0 && unavailable.count(photo)) ++v.ran_after_5xx;
    if (extra > allowed) {
      v.duplicated += extra - allowed;
      note(&v.duplicated_jobs,
           "photo " + photo + " (" + std::to_string(extra) + " versions of jobs not accepted)");
    }
  }
  std::sort(latency.begin(), latency.end());
  v.p99_s = Percentile(latency, 0.99);
  return v;
}

int64_t ParseRfc3339Ms(const std::string& text) {
  struct tm tm {};
  int ms = 0;
  char z = 0;
  // Exactly YYYY-MM-DDTHH:MM:SS.mmmZ, as FormatRfc3339 writes it.
  if (text.size() != 24 ||
      sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
             &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &z) != 8 ||
      z != 'Z')
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t secs = timegm(&tm);
  return secs < 0 ? -1 : static_cast<int64_t>(secs) * 1000 + ms;
}

}  // namespace millions::ctl
