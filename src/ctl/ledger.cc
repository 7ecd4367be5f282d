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
#include <cstdlib>
#include <optional>
#include <random>

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

// ---- pure parts ------------------------------------------------------------------------------

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
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec || !addr.is_v4() || addr.to_v4().to_bytes()[0] != 127)
    return bad("the ledger only sends to loopback addresses (127.x.y.z)");
  return std::make_pair(host, port);
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(sorted.size() * p))];
}

// ---- the ledger ------------------------------------------------------------------------------

Ledger::Ledger(LedgerOptions o) : o_(std::move(o)), start_(Clock::now()) {
  uint64_t now =
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch() / milliseconds(1));
  tag_ = "l" + Base36(now % 2'000'000'000'000ULL) + Base36(getpid() % 1296);
  if (const char* f = std::getenv("MILLIONS_LEDGER_TEST_FAULT")) {
    std::string faults = f;
    phantom_ack_ = faults.find("phantom_ack") != std::string::npos;
    duplicate_ = faults.find("duplicate") != std::string::npos;
  }
}

Ledger::~Ledger() { Stop(); }

Result<std::unique_ptr<Ledger>> Ledger::Start(const LedgerOptions& options) {
  auto hp = ParseLoopbackUrl(options.url);
  if (!hp.ok()) return hp.error();
  if (options.writers < 1 || options.readers < 0)
    return MakeError(Errc::kBadInput, "bad_options", "the ledger needs at least one writer");
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
    Nap(o_.write_interval, &stop_);
  }
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
    if (ok) {
      auto o = JsonObject(a.body);
      ok = o && Str(*o, "caption") == pick.caption;
    }
    ++reads_;
    if (!ok) ++failed_reads_;
    {
      std::lock_guard lock(mu_);
      ++record_.reads;
      if (!ok) ++record_.failed_reads;
      record_.read_ms.push_back(ms);
    }
    Nap(o_.read_interval, &stop_);
  }
}

Ledger::Progress Ledger::Snapshot() const {
  Progress p;
  p.acked = acked_;
  p.failed_writes = failed_writes_;
  p.reads = reads_;
  p.failed_reads = failed_reads_;
  p.last_ack = last_ack_;
  return p;
}

void Ledger::Stop() {
  if (!stop_.exchange(true) || !threads_.empty()) {
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard lock(mu_);
    record_.failed_writes = failed_writes_;
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
  return out;
}

}  // namespace millions::ctl
