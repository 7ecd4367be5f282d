#include "ctl/ledger.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>

#include "core/env.h"
#include "ctl/png.h"

namespace millions::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

struct Answer {
  int status = 0;  // 0: no answer (connection error or timeout)
  std::string body;
};

struct Call {
  std::string method = "GET", target, body, content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  milliseconds timeout{3000};
};

asio::awaitable<void> Exchange(const std::string& host, int port, const Call& c, Answer& out) {
  auto ex = co_await asio::this_coro::executor;
  beast::tcp_stream stream(ex);
  stream.expires_after(c.timeout);
  try {
    asio::ip::tcp::endpoint ep(asio::ip::make_address(host), static_cast<unsigned short>(port));
    co_await stream.async_connect(ep, asio::use_awaitable);
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(c.method), c.target, 11};
    req.set(bhttp::field::host, host + ":" + std::to_string(port));
    req.set(bhttp::field::connection, "close");
    for (const auto& [k, v] : c.headers) req.set(k, v);
    if (!c.content_type.empty()) req.set(bhttp::field::content_type, c.content_type);
    req.body() = c.body;
    req.prepare_payload();
    co_await bhttp::async_write(stream, req, asio::use_awaitable);
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    co_await bhttp::async_read(stream, buf, parser, asio::use_awaitable);
    out.status = static_cast<int>(parser.get().result_int());
    out.body = std::move(parser.get().body());
  } catch (const std::exception&) {
    out.status = 0;
  }
}

// One request on a fresh connection, bounded by its timeout.
Answer Send(const std::string& host, int port, const Call& c) {
  asio::io_context ioc;
  Answer a;
  asio::co_spawn(ioc, Exchange(host, port, c, a), asio::detached);
  ioc.run();
  return a;
}

std::optional<json::object> JsonObject(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.as_object();
}

std::string Str(const json::object& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
}

std::string Base36(uint64_t v) {
  std::string s;
  do {
    s.insert(s.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36]);
    v /= 36;
  } while (v);
  return s;
}

// Sleeps up to d, waking early when *stop turns true.
void Nap(milliseconds d, const std::atomic<bool>* stop = nullptr) {
  auto until = Clock::now() + d;
  while (Clock::now() < until && !(stop && *stop))
    std::this_thread::sleep_for(std::min<Clock::duration>(milliseconds(50), until - Clock::now()));
}

}  // namespace

// ---- the ledger ------------------------------------------------------------------------------

Ledger::Ledger(LedgerOptions o) : o_(std::move(o)), start_(Clock::now()) {
  uint64_t now =
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch() / milliseconds(1));
  tag_ = "l" + Base36(now % 2'000'000'000'000ULL) + Base36(getpid() % 1296);
  if (const char* f = std::getenv("MILLIONS_LEDGER_TEST_FAULT")) {
    std::string faults = f;
    phantom_ack_ = faults.find("phantom_ack") != std::string::npos;
    duplicate_ = faults.find("duplicate") != std::string::npos;
    phantom_job_ = faults.find("phantom_job") != std::string::npos;
  }
}

Ledger::~Ledger() { Stop(); }

Result<std::unique_ptr<Ledger>> Ledger::Start(const LedgerOptions& options) {
  auto hp = ParseLoopbackUrl(options.url);
  if (!hp.ok()) return hp.error();
  if (options.writers < 1 || options.readers < 0)
    return MakeError(Errc::kBadInput, "bad_options", "the ledger needs at least one writer");
  if (options.job_writers < 0 || options.job_writers > options.writers)
    return MakeError(Errc::kBadInput, "bad_options",
                     "job writers must be between 0 and the number of writers");
  std::unique_ptr<Ledger> l(new Ledger(options));
  l->host_ = hp->first;
  l->port_ = hp->second;
  if (Status st = l->SignUp(); !st.ok()) return st.error();
  l->start_ = Clock::now();
  for (int w = 0; w < options.writers; ++w)
    l->threads_.emplace_back([p = l.get(), w] { p->WriteLoop(w); });
  for (int r = 0; r < options.readers; ++r)
    l->threads_.emplace_back([p = l.get(), r] { p->ReadLoop(r); });
  return l;
}

Status Ledger::SignUp() {
  auto deadline = Clock::now() + o_.setup_timeout;
  std::string last = "no answer";
  for (int w = 0; w < o_.writers; ++w) {
    std::string handle = tag_ + "_" + std::to_string(w);
    std::string creds = "{\"handle\":\"" + handle + "\",\"password\":\"ledger-password\"}";
    Writer me;
    while (me.token.empty()) {
      if (Clock::now() >= deadline)
        return MakeError(Errc::kUnavailable, "ledger_setup",
                         "could not sign up ledger writer " + handle + ": " + last);
      Call signup{"POST", "/api/users", creds, "application/json", {}, milliseconds(10000)};
      Answer a = Send(host_, port_, signup);
      // 409: an earlier try of ours went through (its answer was lost); log in all the same.
      if (a.status == 201 || a.status == 409) {
        Call login{"POST", "/api/sessions", creds, "application/json", {}, milliseconds(10000)};
        Answer s = Send(host_, port_, login);
        if (auto o = s.status == 201 ? JsonObject(s.body) : std::nullopt) {
          me.token = Str(*o, "token");
          me.user_id = Str(*o, "user_id");
          if (!me.token.empty()) break;
        }
        last = "log-in answered " + std::to_string(s.status);
      } else {
        last = "sign-up answered " + std::to_string(a.status) + " " + a.body.substr(0, 200);
      }
      Nap(milliseconds(500));
    }
    writers_.push_back(std::move(me));
  }
  return Ok();
}

double Ledger::Now() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

void Ledger::WriteLoop(int w) {
  const Writer& me = writers_[w];
  std::string png = MakePng(8, 8, w);  // a tiny valid PNG: the real upload path
  for (uint64_t seq = 1; !stop_; ++seq) {
    std::string caption = tag_ + "-w" + std::to_string(w) + "-" + std::to_string(seq);
    Call c{"POST",
           "/api/photos?caption=" + caption,
           png,
           "image/png",
           {{"Authorization", "Bearer " + me.token}, {"Idempotency-Key", caption}},
           o_.write_timeout};
    if (duplicate_ && seq == 1) {
      // Test-only: a client that retries without its key; the service stores both.
      Call bare = c;
      bare.headers.pop_back();
      (void)Send(host_, port_, bare);
      c = bare;
    }
    bool acked = false, refused = false;
    std::string photo_id;
    milliseconds backoff(200);
    for (int tries = 0;; ++tries) {
      Answer a = Send(host_, port_, c);
      if (a.status == 201) {
        auto o = JsonObject(a.body);
        Ack ack{w, o ? Str(*o, "id") : "", caption, Now()};
        std::lock_guard lock(mu_);
        record_.acks.push_back(ack);
        if (phantom_ack_ && !phantom_done_) {
          // Test-only: an acknowledgement for a photo that was never written.
          phantom_done_ = true;
          record_.acks.push_back(Ack{w, "1", tag_ + "-phantom", Now()});
        }
        acked_ = record_.acks.size();
        last_ack_ = ack.t;
        acked = true;
        photo_id = ack.id;
        break;
      }
      ++failed_writes_;
      // A definite refusal wrote nothing; 408, 409 (in progress or unknown), 429 and 5xx may
      // be tried again with the same key.
      if (a.status >= 400 && a.status < 500 && a.status != 408 && a.status != 409 &&
          a.status != 429) {
        refused = true;
        break;
      }
      if (tries >= o_.write_retries || stop_) break;
      Nap(backoff, &stop_);
      backoff = std::min(backoff * 2, milliseconds(1000));
    }
    {
      std::lock_guard lock(mu_);
      ++record_.attempts;
      if (refused) ++record_.rejected;
      if (!acked && !refused) record_.ambiguous.emplace_back(w, caption);
    }
    if (acked && w < o_.job_writers && !photo_id.empty() && !stop_)
      RequestJob(w, photo_id, caption);
    Nap(o_.write_interval, &stop_);
  }
}

void Ledger::RequestJob(int w, const std::string& photo_id, const std::string& caption) {
  const Writer& me = writers_[w];
  Call c{"POST",
         "/api/photos/" + photo_id + "/edits",
         R"({"ops":[{"op":"grayscale"}]})",
         "application/json",
         {{"Authorization", "Bearer " + me.token}, {"Idempotency-Key", "job-" + caption}},
         o_.job_timeout};
  enum { kRefused, kUnavailable, kAmbiguous } outcome = kAmbiguous;
  milliseconds backoff(200);
  for (int tries = 0;; ++tries) {
    // The job's latency runs from the request that was accepted, as its user waits for it.
    int64_t sent_wall = Env::Default().WallMillis();
    Answer a = Send(host_, port_, c);
    if (a.status == 202) {
      auto o = JsonObject(a.body);
      std::string id = o ? Str(*o, "id") : "";
      std::lock_guard lock(mu_);
      ++record_.job_requests;
      if (id.empty()) {  // accepted, but no id to follow: counted as unanswered
        record_.ambiguous_job_photos.push_back(photo_id);
        return;
      }
      record_.jobs.push_back(JobAck{w, photo_id, id, Now(), sent_wall});
      if (phantom_job_ && !phantom_job_done_) {
        // Test-only: a job recorded as accepted that was never requested.
        phantom_job_done_ = true;
        record_.jobs.push_back(JobAck{w, photo_id, "1", Now(), sent_wall});
      }
      jobs_accepted_ = record_.jobs.size();
      return;
    }
    ++failed_jobs_;
    // A 5xx (503: the queue or the database unavailable) and a definite refusal (4xx) end the
    // request; no answer, 408, 409 (the first try still running) and 429 are tried again with
    // the same key.
    if (a.status >= 500) {
      outcome = kUnavailable;
      break;
    }
    if (a.status != 0 && a.status != 408 && a.status != 409 && a.status != 429) {
      outcome = kRefused;
      break;
    }
    if (tries >= 5 || stop_) break;
    Nap(backoff, &stop_);
    backoff = std::min(backoff * 2, milliseconds(1000));
  }
  std::lock_guard lock(mu_);
  ++record_.job_requests;
  (outcome == kRefused       ? record_.refused_job_photos
   : outcome == kUnavailable ? record_.unavailable_job_photos
                             : record_.ambiguous_job_photos)
      .push_back(photo_id);
}

void Ledger::ReadLoop(int r) {
  std::mt19937 rng(static_cast<unsigned>(r * 7919 + 1));
  while (!stop_) {
    Ack pick;
    {
      std::lock_guard lock(mu_);
      if (!record_.acks.empty())
        pick = record_.acks[std::uniform_int_distribution<size_t>(0, record_.acks.size() - 1)(rng)];
    }
    if (pick.id.empty()) {
      Nap(milliseconds(100), &stop_);
      continue;
    }
    auto t0 = Clock::now();
    Answer a =
        Send(host_, port_, Call{"GET", "/api/photos/" + pick.id, "", "", {}, o_.read_timeout});
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    bool ok = a.status == 200;
    MediaRead media;
    if (ok) {
      auto o = JsonObject(a.body);
      ok = o && Str(*o, "caption") == pick.caption;
      if (ok) {
        media = ReadMedia(Str(*o, "url"));
        ok = media.ok;
      }
    }
    ++reads_;
    if (!ok) ++failed_reads_;
    {
      std::lock_guard lock(mu_);
      ++record_.reads;
      if (!ok) ++record_.failed_reads;
      record_.media_reads += media.tried;
      record_.media_fallbacks += media.fell_back;
      record_.read_ms.push_back(ms);
    }
    Nap(o_.read_interval, &stop_);
  }
}

// The photo's bytes as the page loads them: from its `url` (the edge of the reader's region when
// the topology has one, else a path on the public URL) and, when that fails, from the same path
// on the public URL (the page's fallback, setImage in web/app.js). Only loopback URLs are
// fetched; any other is read from the public URL alone.
Ledger::MediaRead Ledger::ReadMedia(const std::string& url) {
  MediaRead r;
  if (url.empty()) return r;  // nothing to load: not a failure of the media path
  r.tried = 1;
  std::string path = url;
  if (url.rfind("http://", 0) == 0) {
    size_t slash = url.find('/', 7);
    path = slash == std::string::npos ? "/" : url.substr(slash);
    if (auto hp = ParseLoopbackUrl(url); hp.ok()) {
      Answer a = Send(hp->first, hp->second, Call{"GET", path, "", "", {}, o_.read_timeout});
      if (a.status == 200 && !a.body.empty()) {
        r.ok = true;
        return r;
      }
      r.fell_back = 1;
    }
  }
  Answer a = Send(host_, port_, Call{"GET", path, "", "", {}, o_.read_timeout});
  r.ok = a.status == 200 && !a.body.empty();
  return r;
}

Ledger::Progress Ledger::Snapshot() const {
  Progress p;
  p.acked = acked_;
  p.failed_writes = failed_writes_;
  p.reads = reads_;
  p.failed_reads = failed_reads_;
  p.last_ack = last_ack_;
  p.jobs = jobs_accepted_;
  return p;
}

void Ledger::Stop() {
  if (!stop_.exchange(true) || !threads_.empty()) {
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard lock(mu_);
    record_.failed_writes = failed_writes_;
    record_.failed_job_requests = failed_jobs_;
    record_.stopped_at = Now();
  }
}

LedgerRecord Ledger::Record() const {
  std::lock_guard lock(mu_);
  return record_;
}

LedgerObserved Ledger::Observe() const {
  LedgerRecord rec = Record();
  LedgerObserved out;
  auto deadline = Clock::now() + o_.settle;
  // 1. Every acknowledged photo read back with its caption, by a few threads, pass after pass
  // until all are read or the settle time is over.
  std::vector<const Ack*> pending;
  for (const Ack& a : rec.acks) pending.push_back(&a);
  std::mutex mu;
  while (!pending.empty()) {
    std::atomic<size_t> next{0};
    std::vector<const Ack*> still;
    std::vector<std::thread> pool;
    for (int i = 0; i < 4; ++i)
      pool.emplace_back([&] {
        for (size_t k; (k = next++) < pending.size();) {
          const Ack* a = pending[k];
          bool ok = false;
          if (!a->id.empty() && a->id.find_first_not_of("0123456789") == std::string::npos) {
            Answer r = Send(host_, port_,
                            Call{"GET", "/api/photos/" + a->id, "", "", {}, o_.read_timeout});
            auto o = r.status == 200 ? JsonObject(r.body) : std::nullopt;
            ok = o && Str(*o, "caption") == a->caption;
          }
          std::lock_guard lock(mu);
          if (ok) {
            out.readable.insert(a->caption);
          } else {
            still.push_back(a);
          }
        }
      });
    for (auto& t : pool) t.join();
    pending = std::move(still);
    if (pending.empty() || Clock::now() + milliseconds(1000) >= deadline) break;
    Nap(milliseconds(1000));
  }
  // 2. Each writer's photos, page by page (limit 100: the default page of 20 is cached), again
  // until every acknowledged caption is listed or the settle time is over.
  std::vector<std::set<std::string>> want(writers_.size());
  for (const Ack& a : rec.acks) want[a.writer].insert(a.caption);
  size_t max_pages = (rec.acks.size() + rec.ambiguous.size()) / 100 + 20;
  out.listed.resize(writers_.size());
  out.listed_ok.assign(writers_.size(), false);
  for (size_t w = 0; w < writers_.size(); ++w) {
    for (;;) {
      std::map<std::string, int> seen;
      bool complete = false;
      std::string before;
      for (size_t page = 0; page < max_pages; ++page) {
        std::string target = "/api/users/" + writers_[w].user_id + "/photos?limit=100";
        if (!before.empty()) target += "&before=" + before;
        Answer r = Send(host_, port_, Call{"GET", target, "", "", {}, milliseconds(5000)});
        auto o = r.status == 200 ? JsonObject(r.body) : std::nullopt;
        if (!o || !o->contains("items") || !o->at("items").is_array()) break;
        for (const auto& item : o->at("items").as_array())
          if (item.is_object()) ++seen[Str(item.as_object(), "caption")];
        auto nx = o->find("next");
        if (nx == o->end() || !nx->value().is_string()) {
          complete = true;
          break;
        }
        before = std::string(nx->value().as_string());
      }
      bool all = complete;
      for (const auto& c : want[w]) all = all && seen.count(c);
      if (complete || out.listed[w].empty()) out.listed[w] = std::move(seen);
      out.listed_ok[w] = complete;
      if (all || Clock::now() + milliseconds(1000) >= deadline) break;
      Nap(milliseconds(1000));
    }
  }
  ObserveJobs(deadline, &out);
  return out;
}

void Ledger::ObserveJobs(Clock::time_point deadline, LedgerObserved* out) const {
  LedgerRecord rec = Record();
  if (rec.jobs.empty() && rec.refused_job_photos.empty() && rec.unavailable_job_photos.empty() &&
      rec.ambiguous_job_photos.empty())
    return;
  // 1. Every accepted job until it ends (done or failed), by long polls of a few seconds. A job
  // the service does not know (404) is given 10 s, for a replica's lag; another 4xx is final;
  // no answer and 5xx are asked again until the settle time is over.
  std::vector<const JobAck*> pending;
  for (const JobAck& j : rec.jobs) pending.push_back(&j);
  std::map<std::string, Clock::time_point> unknown_since;
  std::mutex mu;
  while (!pending.empty()) {
    std::atomic<size_t> next{0};
    std::vector<const JobAck*> still;
    std::vector<std::thread> pool;
    for (int i = 0; i < 4; ++i)
      pool.emplace_back([&] {
        for (size_t k; (k = next++) < pending.size();) {
          const JobAck* j = pending[k];
          auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
          long wait = std::clamp<long>(left.count() - 1000, 0, 5000);
          Answer r = Send(host_, port_,
                          Call{"GET",
                               "/api/jobs/" + j->job_id + "?wait_ms=" + std::to_string(wait),
                               "",
                               "",
                               {{"Authorization", "Bearer " + writers_[j->writer].token}},
                               milliseconds(wait + 5000)});
          JobSeen seen;
          auto o = r.status == 200 ? JsonObject(r.body) : std::nullopt;
          if (o) {
            seen.status = Str(*o, "status");
            seen.error = Str(*o, "error");
            seen.finished_wall_ms = ParseRfc3339Ms(Str(*o, "finished_at"));
          }
          bool ended = seen.status == "done" || seen.status == "failed";
          std::lock_guard lock(mu);
          bool refused = r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429;
          if (r.status == 404) {
            auto first = unknown_since.emplace(j->job_id, Clock::now()).first->second;
            seen.error = "the service does not know it";
            ended = Clock::now() - first >= milliseconds(10000);
          } else if (refused) {  // a definite answer that will not change
            seen.error = "GET answered " + std::to_string(r.status);
            ended = true;
          }
          if (o || refused || !out->jobs.count(j->job_id)) out->jobs[j->job_id] = seen;
          if (!ended) still.push_back(j);
        }
      });
    for (auto& t : pool) t.join();
    pending = std::move(still);
    if (pending.empty() || Clock::now() + milliseconds(1000) >= deadline) break;
    Nap(milliseconds(200));
  }
  // 2. The versions of every photo a job was asked for, until each done job shows its version
  // (a page cached by a web node may lag the job by its TTL) or the settle time is over.
  std::set<std::string> photos(rec.refused_job_photos.begin(), rec.refused_job_photos.end());
  photos.insert(rec.ambiguous_job_photos.begin(), rec.ambiguous_job_photos.end());
  photos.insert(rec.unavailable_job_photos.begin(), rec.unavailable_job_photos.end());
  std::map<std::string, std::set<std::string>> want;  // photo -> its done jobs
  for (const JobAck& j : rec.jobs) {
    photos.insert(j.photo_id);
    if (out->jobs[j.job_id].status == "done") want[j.photo_id].insert(j.job_id);
  }
  std::vector<std::string> todo(photos.begin(), photos.end());
  while (!todo.empty()) {
    std::atomic<size_t> next{0};
    std::vector<std::string> still;
    std::vector<std::thread> pool;
    for (int i = 0; i < 4; ++i)
      pool.emplace_back([&] {
        for (size_t k; (k = next++) < todo.size();) {
          const std::string& photo = todo[k];
          Answer r =
              Send(host_, port_, Call{"GET", "/api/photos/" + photo, "", "", {}, o_.read_timeout});
          auto o = r.status == 200 ? JsonObject(r.body) : std::nullopt;
          std::map<std::string, int> by_job;
          bool read = o && o->contains("versions") && o->at("versions").is_array();
          if (read)
            for (const auto& v : o->at("versions").as_array()) {
              const auto* id = v.is_object() ? v.as_object().if_contains("job_id") : nullptr;
              if (!id) continue;
              ++by_job[id->is_string()   ? std::string(id->as_string())
                       : id->is_number() ? std::to_string(id->to_number<int64_t>())
                                         : ""];
            }
          bool complete = read;
          if (auto it = want.find(photo); read && it != want.end())
            for (const auto& job : it->second) complete = complete && by_job.count(job);
          std::lock_guard lock(mu);
          if (read) out->versions[photo] = std::move(by_job);
          if (!complete) still.push_back(photo);
        }
      });
    for (auto& t : pool) t.join();
    todo = std::move(still);
    if (todo.empty() || Clock::now() + milliseconds(1000) >= deadline) break;
    Nap(milliseconds(1000));
  }
}

}  // namespace millions::ctl
