#include "ctl/load.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <random>

#include "ctl/load_region.h"
#include "ctl/png.h"

namespace millions::ctl {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

namespace {

struct Target {
  std::string host;
  int port = 80;
};

Target ParseTarget(const std::string& url) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  rest = rest.substr(0, rest.find('/'));
  Target t;
  size_t colon = rest.rfind(':');
  t.host = rest.substr(0, colon);
  t.port = colon == std::string::npos ? 80 : std::stoi(rest.substr(colon + 1));
  return t;
}

struct Call {
  std::string method, target, body, content_type, token;
  std::string kind;  // for the table
};

struct Answer {
  int status = 0;  // 0: transport error, named in `error`
  std::string body;
  const char* error = "";  // "connect_error" | "timeout" | "io_error" when status is 0
  bool retried = false;    // a transport error on one address: sent again to the next
};

bool Succeeded(int status) { return status >= 200 && status < 400; }

// One keep-alive connection; reconnects after an error. Given several addresses (a name's A
// records, or --target's list), it starts on one and, on a transport error (refused, reset,
// timed out: a balancer died), sends the request once more to the next one and stays there, as
// a client with several addresses does. An HTTP error status is an answer: never retried.
class Conn {
 public:
  // `source`: the local address to connect from (empty: the kernel's choice).
  Conn(asio::io_context& ioc, std::vector<Target> targets, size_t first, std::string source = "")
      : ioc_(ioc),
        targets_(std::move(targets)),
        at_(first % targets_.size()),
        stream_(ioc),
        source_(std::move(source)) {}
  awaitable<Answer> Send(const Call& c) {
    Answer a = co_await Once(c);
    if (a.status == 0 && targets_.size() > 1) {
      at_ = (at_ + 1) % targets_.size();
      a = co_await Once(c);
      a.retried = true;
    }
    co_return a;
  }

 private:
  awaitable<Answer> Once(const Call& c) {
    Answer a;
    const Target& t = targets_[at_];
    bool connecting = !open_;
    try {
      if (!open_) {
        stream_.expires_after(std::chrono::seconds(5));
        if (!source_.empty()) {
          stream_.socket().open(asio::ip::tcp::v4());
          stream_.socket().bind(asio::ip::tcp::endpoint(asio::ip::make_address(source_), 0));
        }
        co_await stream_.async_connect(
            asio::ip::tcp::endpoint(asio::ip::make_address(t.host), t.port), use_awaitable);
        open_ = true;
        connecting = false;
      }
      bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(c.method), c.target, 11};
      req.set(bhttp::field::host, t.host);
      if (!c.token.empty()) req.set(bhttp::field::authorization, "Bearer " + c.token);
      if (!c.content_type.empty()) req.set(bhttp::field::content_type, c.content_type);
      req.body() = c.body;
      req.prepare_payload();
      stream_.expires_after(std::chrono::seconds(30));
      co_await bhttp::async_write(stream_, req, use_awaitable);
      bhttp::response<bhttp::string_body> res;
      co_await bhttp::async_read(stream_, buf_, res, use_awaitable);
      a.status = static_cast<int>(res.result_int());
      a.body = std::move(res.body());
      if (!res.keep_alive()) Close();
    } catch (const boost::system::system_error& e) {
      Close();
      a.status = 0;
      a.error = e.code() == beast::error::timeout ? "timeout"
                : connecting                      ? "connect_error"
                                                  : "io_error";
    } catch (const std::exception&) {
      Close();
      a.status = 0;
      a.error = connecting ? "connect_error" : "io_error";
    }
    co_return a;
  }
  void Close() {
    beast::error_code ec;
    stream_.socket().close(ec);  // a closed socket reopens on the next async_connect
    buf_.clear();
    open_ = false;
  }
  asio::io_context& ioc_;
  std::vector<Target> targets_;
  size_t at_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  bool open_ = false;
  std::string source_;
};

// Simulated user i's own address on a loopback target (127.100.0.1 on): sign-ups are throttled
// per client address (docs/security.md), and real users do not share one. Elsewhere: none.
std::string SourceFor(const Target& t, int i) {
  if (t.host.rfind("127.", 0) != 0) return "";
  return "127." + std::to_string(100 + i / 62'500) + "." + std::to_string(i / 250 % 250 + 1) + "." +
         std::to_string(i % 250 + 1);
}

struct User {
  std::string id, token, photo_id;
};

class Load {
 public:
  Load(const LoadFlags& f) : f_(f), rng_(12345) {
    // Several comma-separated targets share the load by connection, and each connection fails
    // over to the next target on a transport error.
    std::string list = f.target;
    for (size_t pos; (pos = list.find(',')) != std::string::npos; list.erase(0, pos + 1))
      targets_.push_back(ParseTarget(list.substr(0, pos)));
    targets_.push_back(ParseTarget(list));
  }

  int Run() {
    asio::co_spawn(ioc_, Main(), asio::detached);
    ioc_.run();
    return Report();
  }

 private:
  awaitable<void> Main() {
    // Set-up: sign up and log in every simulated user (argon2id makes this the slow part).
    std::string run =
        std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 100000000);
    fprintf(stderr, "setting up %d users...\n", f_.users);
    for (int i = 0; i < f_.users; ++i) {
      Conn c(ioc_, targets_, 0, SourceFor(targets_[0], i));
      std::string handle = "load_" + run + "_" + std::to_string(i);
      std::string creds = "{\"handle\":\"" + handle + "\",\"password\":\"password123\"}";
      // Named, not temporaries: GCC 12 destroys temporaries of a co_await expression twice.
      Call signup{"POST", "/api/users", creds, "application/json", "", "signup"};
      Call login{"POST", "/api/sessions", creds, "application/json", "", "login"};
      Answer a = co_await c.Send(signup);
      Answer s = co_await c.Send(login);
      // A sign-up retried on the next address after its answer was lost may find its own
      // first attempt done: the handle is then ours, and the log-in says so.
      bool mine = a.status == 409 && a.retried && s.status == 201;
      if ((a.status != 201 && !mine) || s.status != 201) {
        fprintf(stderr, "set-up failed for %s: %d/%d %s\n", handle.c_str(), a.status, s.status,
                s.body.c_str());
        setup_failed_ = true;
        co_return;
      }
      User u;
      u.id = std::string(
          json::parse(mine ? s.body : a.body).as_object().at(mine ? "user_id" : "id").as_string());
      u.token = std::string(json::parse(s.body).as_object().at("token").as_string());
      Call upload{"POST",  "/api/photos?caption=load", MakePng(24, 16, i), "image/png", u.token,
                  "upload"};
      Answer p = co_await c.Send(upload);
      if (p.status == 201)
        u.photo_id = std::string(json::parse(p.body).as_object().at("id").as_string());
      users_.push_back(std::move(u));
    }
    // Zipf over users: user k is chosen with weight 1/(k+1).
    std::vector<double> w;
    for (int i = 0; i < f_.users; ++i) w.push_back(1.0 / (i + 1));
    zipf_ = std::discrete_distribution<int>(w.begin(), w.end());
    start_ = Clock::now();
    end_ = start_ + std::chrono::seconds(f_.duration_s);
    asio::co_spawn(ioc_, Progress(), asio::detached);
    if (f_.rate > 0) {
      co_await OpenLoop();
    } else {
      running_users_ = f_.users;
      for (int i = 0; i < f_.users; ++i) asio::co_spawn(ioc_, ClosedUser(i), asio::detached);
    }
  }

  Call Next(int u) {
    User& me = users_[static_cast<size_t>(u)];
    int pick = zipf_(rng_);
    if (pick == u) pick = (pick + 1) % f_.users;  // nobody follows themselves
    const User& other = users_[static_cast<size_t>(pick)];
    int r = std::uniform_int_distribution<int>(0, 99)(rng_);
    // default: 60 browse, 20 feed, 8 photos list, 5 follow, 4 upload, 3 edit.
    int browse = 60, feed = 20, list = 8, follow = 5, upload = 4;
    if (f_.mix == "browse") browse = 80, feed = 15, list = 5, follow = 0, upload = 0;
    if (f_.mix == "write") browse = 30, feed = 10, list = 5, follow = 20, upload = 20;
    if ((r -= browse) < 0) return {"GET", "/api/users/" + other.id, "", "", "", "browse"};
    if ((r -= feed) < 0) return {"GET", "/api/feed?limit=20", "", "", me.token, "feed"};
    if ((r -= list) < 0)
      return {"GET", "/api/users/" + other.id + "/photos?limit=20", "", "", "", "photos"};
    if ((r -= follow) < 0)
      return {"POST", "/api/users/" + other.id + "/follow", "", "", me.token, "follow"};
    if ((r -= upload) < 0)
      return {"POST",  "/api/photos?caption=load", MakePng(24, 16, r), "image/png", me.token,
              "upload"};
    if (me.photo_id.empty()) return {"GET", "/api/users/" + other.id, "", "", "", "browse"};
    return {"POST",
            "/api/photos/" + me.photo_id + "/edits",
            "{\"ops\":[{\"op\":\"rotate\",\"degrees\":90},{\"op\":\"grayscale\"}]}",
            "application/json",
            me.token,
            "edit"};
  }

  void Record(const Call& c, const Answer& a, Clock::time_point due) {
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - due).count();
    lat_.push_back(ms);
    ++by_status_[a.status];
    ++by_kind_[c.kind];
    if (a.retried) ++retried_;
    if (Succeeded(a.status)) {
      ok_lat_.push_back(ms);
      window_.push_back(ms);
    } else {
      ++errors_;
      ++window_errors_;
      ++errors_by_kind_[a.status == 0 ? a.error : a.status >= 500 ? "http_5xx" : "http_4xx"];
      ++errors_by_call_[c.kind];
    }
  }

  awaitable<void> ClosedUser(int u) {
    Conn c(ioc_, targets_, static_cast<size_t>(u));
    while (Clock::now() < end_) {
      Call call = Next(u);
      auto t0 = Clock::now();
      Answer a = co_await c.Send(call);
      Record(call, a, t0);
    }
    if (--running_users_ == 0) done_ = true;
  }

  awaitable<void> OpenLoop() {
    // Requests are due every 1/rate s whatever happens to earlier ones; each waits for a free
    // connection (up to f_.connections), and its latency counts from when it was due.
    auto gap = std::chrono::duration<double>(1.0 / f_.rate);
    asio::steady_timer timer(ioc_);
    auto due = Clock::now();
    int i = 0;
    while (due < end_) {
      timer.expires_at(std::chrono::time_point_cast<Clock::duration>(due));
      co_await timer.async_wait(use_awaitable);
      Call call = Next(i++ % f_.users);
      if (!idle_.empty() || open_ < f_.connections) {
        asio::co_spawn(ioc_, Issue(std::move(call), due), asio::detached);
      } else {
        waiting_.push_back({std::move(call), due});
      }
      due += std::chrono::duration_cast<Clock::duration>(gap);
    }
    done_ = true;
  }

  awaitable<void> Issue(Call call, Clock::time_point due) {
    ++inflight_;
    std::unique_ptr<Conn> c;
    if (!idle_.empty()) {
      c = std::move(idle_.back());
      idle_.pop_back();
    } else {
      c = std::make_unique<Conn>(ioc_, targets_, static_cast<size_t>(open_));
      ++open_;
    }
    for (;;) {
      Answer a = co_await c->Send(call);
      Record(call, a, due);
      if (waiting_.empty()) break;
      std::tie(call, due) = std::move(waiting_.front());
      waiting_.pop_front();
    }
    idle_.push_back(std::move(c));
    --inflight_;
  }

  awaitable<void> Progress() {
    asio::steady_timer timer(ioc_);
    size_t last_ok = 0;
    while (!(done_ && waiting_.empty() && inflight_ == 0 && Clock::now() >= end_)) {
      timer.expires_after(std::chrono::seconds(1));
      co_await timer.async_wait(use_awaitable);
      double secs = std::chrono::duration<double>(Clock::now() - start_).count();
      std::vector<double> w(window_.begin(), window_.end());
      window_.clear();
      std::sort(w.begin(), w.end());
      double p99 = w.empty() ? 0 : w[std::min(w.size() - 1, static_cast<size_t>(w.size() * 0.99))];
      fprintf(stderr,
              "\r[%3.0fs/%ds] %8zu requests %8.0f ok/s  p99 %7.1f ms  errors %llu (%llu/s)   ",
              secs, f_.duration_s, lat_.size(), static_cast<double>(ok_lat_.size() - last_ok), p99,
              static_cast<unsigned long long>(errors_),
              static_cast<unsigned long long>(window_errors_));
      if (secs < f_.duration_s + 0.5)  // the last tick after the end holds stragglers only
        timeline_.emplace_back(static_cast<double>(ok_lat_.size() - last_ok),
                               static_cast<double>(window_errors_));
      window_errors_ = 0;
      last_ok = ok_lat_.size();
      if (secs > f_.duration_s + 60) break;  // bounded even if the target hangs
    }
    fprintf(stderr, "\n");
    ioc_.stop();
  }

  // Successes (2xx and 3xx) are the throughput; errors are counted apart, by kind, and never
  // raise a rate. Latency is shown for successes and for every request.
  int Report() {
    if (setup_failed_) return 1;
    double secs = std::chrono::duration<double>(
                      std::min(Clock::now(), end_ + std::chrono::seconds(60)) - start_)
                      .count();
    secs = std::max(secs, 1e-9);
    std::sort(lat_.begin(), lat_.end());
    std::sort(ok_lat_.begin(), ok_lat_.end());
    auto pct = [](const std::vector<double>& v, double p) {
      return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(v.size() * p))];
    };
    double ok_rps = ok_lat_.size() / secs;
    double all_rps = lat_.size() / secs;
    printf("\n%s loop, %d users, %d s, mix %s, target %s\n", f_.rate > 0 ? "open" : "closed",
           f_.users, f_.duration_s, f_.mix.c_str(), f_.target.c_str());
    printf("%-10s %10s %10s %9s %9s %9s %9s\n", "latency", "requests", "per s", "p50 ms", "p90 ms",
           "p99 ms", "max ms");
    auto row = [&](const char* name, const std::vector<double>& v, double rate) {
      printf("%-10s %10zu %10.1f %9.2f %9.2f %9.2f %9.2f\n", name, v.size(), rate, pct(v, 0.5),
             pct(v, 0.9), pct(v, 0.99), v.empty() ? 0.0 : v.back());
    };
    row("successes", ok_lat_, ok_rps);
    row("all", lat_, all_rps);
    printf("errors     %10llu %10.1f\n", static_cast<unsigned long long>(errors_), errors_ / secs);
    if (retried_ > 0)
      printf("retried    %10llu            (a transport error, sent again to the next address)\n",
             static_cast<unsigned long long>(retried_));
    printf("\nby status:");
    json::object statuses;
    for (auto& [status, n] : by_status_) {
      printf("  %s %llu", status == 0 ? "conn-error" : std::to_string(status).c_str(),
             static_cast<unsigned long long>(n));
      statuses[status == 0 ? "conn_error" : std::to_string(status)] = n;
    }
    printf("\nby kind:  ");
    for (auto& [kind, n] : by_kind_)
      printf("  %s %llu", kind.c_str(), static_cast<unsigned long long>(n));
    json::object error_kinds, error_calls;
    if (errors_ > 0) {
      printf("\nerrors:   ");
      for (auto& [kind, n] : errors_by_kind_) {
        printf("  %s %llu", kind.c_str(), static_cast<unsigned long long>(n));
        error_kinds[kind] = n;
      }
      printf("  (in");
      for (auto& [call, n] : errors_by_call_) {
        printf(" %s %llu", call.c_str(), static_cast<unsigned long long>(n));
        error_calls[call] = n;
      }
      printf(")");
    }
    printf("\n");
    if (!f_.json_out.empty()) {
      json::object o{{"requests", lat_.size()},
                     {"successes", ok_lat_.size()},
                     {"errors", errors_},
                     {"retried", retried_},
                     {"seconds", secs},
                     {"rps", ok_rps},
                     {"attempts_rps", all_rps},
                     {"p50_ms", pct(ok_lat_, 0.5)},
                     {"p90_ms", pct(ok_lat_, 0.9)},
                     {"p99_ms", pct(ok_lat_, 0.99)},
                     {"max_ms", ok_lat_.empty() ? 0.0 : ok_lat_.back()},
                     {"all_p50_ms", pct(lat_, 0.5)},
                     {"all_p99_ms", pct(lat_, 0.99)},
                     {"all_max_ms", lat_.empty() ? 0.0 : lat_.back()},
                     {"by_status", statuses},
                     {"errors_by_kind", error_kinds},
                     {"errors_by_call", error_calls}};
      json::array timeline;  // per second of the run: successes, errors
      for (auto& [ok, err] : timeline_) timeline.push_back(json::array{ok, err});
      o["timeline"] = std::move(timeline);
      std::ofstream(f_.json_out) << json::serialize(o) << "\n";
    }
    if (f_.max_errors >= 0 && errors_ > static_cast<uint64_t>(f_.max_errors)) {
      fprintf(stderr, "millions load: %llu errors, more than --max-errors %d\n",
              static_cast<unsigned long long>(errors_), f_.max_errors);
      return 1;
    }
    return 0;
  }

  LoadFlags f_;
  std::vector<Target> targets_;
  asio::io_context ioc_;
  std::mt19937 rng_;
  std::discrete_distribution<int> zipf_;
  std::vector<User> users_;
  Clock::time_point start_, end_;
  std::vector<double> lat_;     // every request
  std::vector<double> ok_lat_;  // successes only
  std::vector<double> window_;  // successes in the last progress second
  uint64_t errors_ = 0, window_errors_ = 0, retried_ = 0;
  std::vector<std::pair<double, double>> timeline_;  // per progress second: successes, errors
  std::map<std::string, uint64_t> errors_by_kind_, errors_by_call_;
  std::map<int, uint64_t> by_status_;
  std::map<std::string, uint64_t> by_kind_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::deque<std::pair<Call, Clock::time_point>> waiting_;
  int open_ = 0;
  int running_users_ = 0;
  int inflight_ = 0;
  bool done_ = false;
  bool setup_failed_ = false;
};

}  // namespace

int RunLoad(const LoadFlags& flags) {
  if (flags.users < 1 || flags.duration_s < 1) {
    fprintf(stderr, "millions load: --users and --duration must be positive\n");
    return 2;
  }
  LoadFlags f = flags;
  if (!f.region.empty()) {
    try {
      auto r = ResolveRegion(f.topology, f.region);
      if (!r.ok()) {
        fprintf(stderr, "millions load: --region %s: %s\n", f.region.c_str(),
                r.error().message.c_str());
        return 1;
      }
      fprintf(stderr, "%s\n", r->summary.c_str());
      f.target = r->targets;
    } catch (const std::exception& e) {
      fprintf(stderr, "millions load: %s\n", e.what());
      return 2;
    }
  }
  Load load(f);
  return load.Run();
}

}  // namespace millions::ctl
