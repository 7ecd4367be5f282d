// Timelines on Redis: one sorted set per user ("tl:<user>"), every score 0, so that members sort
// by their bytes: the zero-padded photo id first, so byte order is id order and a page is one
// ZREVRANGEBYLEX. The member "!built" (sorting before every digit) marks a built timeline.
// Scripts keep each change atomic: a push and its trim, a build and its mark.
#include "cache/timeline.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cstdio>
#include <mutex>
#include <thread>

#include "cache/redis_client.h"

namespace millions::cache {
namespace {

constexpr const char* kBuilt = "!built";
constexpr const char* kCelebrities = "celebrities";
constexpr size_t kKeysPerPush = 500;  // followers per script call: bounded work per command

// KEYS: timelines. ARGV[1]: the member, ARGV[2]: cap. Trims the oldest entries, never the mark.
constexpr const char* kPushScript = R"(
local cap = tonumber(ARGV[2])
for i = 1, #KEYS do
  local k = KEYS[i]
  redis.call('ZADD', k, 0, ARGV[1])
  local keep = redis.call('ZSCORE', k, '!built') and 1 or 0
  local n = redis.call('ZCARD', k) - keep
  if n > cap then redis.call('ZREMRANGEBYRANK', k, keep, keep + n - cap - 1) end
end
return #KEYS
)";

// KEYS[1]: the timeline. ARGV[1]: cap, ARGV[2..]: members. Adds them, marks it built, trims.
constexpr const char* kBuildScript = R"(
local k = KEYS[1]
local cap = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', k, 0, ARGV[i]) end
redis.call('ZADD', k, 0, '!built')
local n = redis.call('ZCARD', k) - 1
if n > cap then redis.call('ZREMRANGEBYRANK', k, 1, n - cap) end
return n
)";

std::string Key(int64_t user) { return "tl:" + std::to_string(user); }

std::string Padded(int64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%019lld", static_cast<long long>(id));
  return buf;
}

Error Unavailable(std::string message) {
  return MakeError(Errc::kUnavailable, "timeline_unavailable", std::move(message));
}

Status CheckReply(const Result<RedisReply>& r, const char* what) {
  if (!r.ok()) return r.error();
  if (r->is_error()) return Unavailable(std::string(what) + ": " + r->str);
  return Ok();
}

class RedisTimelines final : public TimelineStore {
 public:
  explicit RedisTimelines(TimelineOptions o) : opt_(std::move(o)), work_(ioc_.get_executor()) {
    for (const auto& n : opt_.nodes) {
      RedisOptions ro;
      ro.host = n.host;
      ro.port = n.port;
      ro.command_timeout = opt_.timeout;
      ro.connect_timeout = std::max(opt_.timeout * 2, std::chrono::milliseconds(200));
      ro.user = opt_.user;
      ro.password = opt_.password;
      clients_.push_back(RedisClient::Create(ioc_, ro));  // never flushed: a store, not a cache
    }
    io_thread_ = std::thread([this] { ioc_.run(); });
  }

  ~RedisTimelines() override {
    for (auto& c : clients_) c->Close();
    work_.reset();
    ioc_.stop();
    io_thread_.join();
  }

  int cap() const override { return opt_.cap; }

  Status Push(const std::vector<int64_t>& users, const TimelineEntry& entry) override {
    std::string member = TimelineMember(entry), cap = std::to_string(opt_.cap);
    for (size_t i = 0; i < users.size(); i += kKeysPerPush) {
      size_t n = std::min(kKeysPerPush, users.size() - i);
      std::vector<std::string> argv = {"EVAL", kPushScript, std::to_string(n)};
      for (size_t j = 0; j < n; ++j) argv.push_back(Key(users[i + j]));
      argv.push_back(member);
      argv.push_back(cap);
      if (Status st = CheckReply(Primary().Call(std::move(argv)), "push"); !st.ok()) return st;
    }
    return Ok();
  }

  Result<TimelinePage> Read(int64_t user, int64_t before, int limit) override {
    std::string key = Key(user);
    std::string max = before > 0 ? "(" + Padded(before) : "+";
    std::vector<std::vector<std::string>> cmds = {
        {"ZSCORE", key, kBuilt},
        {"ZREVRANGEBYLEX", key, max, "[0", "LIMIT", "0", std::to_string(limit)},
        {"ZCARD", key}};
    // The primary, or when it does not answer a replica (behind by what failed to be written
    // since: the page says so).
    Error last = Unavailable("no timeline node");
    for (size_t i = 0; i < clients_.size(); ++i) {
      auto& c = clients_[i];
      auto r = c->CallMany(cmds);
      if (!r.ok()) {
        last = r.error();
        continue;
      }
      const auto& rs = *r;
      if (rs.size() != 3 || rs[1].type != RedisReply::Type::kArray || rs[0].is_error())
        return Unavailable("unexpected reply to a timeline read");
      TimelinePage page;
      page.built = !rs[0].is_nil();
      page.from_replica = i > 0;
      page.full = rs[2].integer - (page.built ? 1 : 0) >= opt_.cap;
      for (const auto& m : rs[1].elements) {
        TimelineEntry e;
        if (ParseTimelineMember(m.str, &e)) page.entries.push_back(e);
      }
      return page;
    }
    return last;
  }

  Status Build(int64_t user, const std::vector<TimelineEntry>& entries) override {
    std::vector<std::string> argv = {"EVAL", kBuildScript, "1", Key(user),
                                     std::to_string(opt_.cap)};
    for (const auto& e : entries) argv.push_back(TimelineMember(e));
    return CheckReply(Primary().Call(std::move(argv)), "build");
  }

  Status Drop(int64_t user, bool forget) override {
    auto r =
        forget ? Primary().Call({"DEL", Key(user)}) : Primary().Call({"ZREM", Key(user), kBuilt});
    return CheckReply(r, "drop");
  }

  Status AddCelebrity(int64_t user) override {
    Status st = CheckReply(Primary().Call({"SADD", kCelebrities, std::to_string(user)}), "sadd");
    if (st.ok()) {
      std::lock_guard lock(mu_);
      celebrities_at_ = {};  // read it again next time
    }
    return st;
  }

  Result<std::vector<int64_t>> Celebrities() override {
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mu_);
      if (celebrities_at_ != std::chrono::steady_clock::time_point{} &&
          now - celebrities_at_ < opt_.celebrities_ttl)
        return celebrities_;
    }
    Error last = Unavailable("no timeline node");
    for (auto& c : clients_) {
      auto r = c->Call({"SMEMBERS", kCelebrities});
      if (!r.ok() || r->type != RedisReply::Type::kArray) {
        if (!r.ok()) last = r.error();
        continue;
      }
      std::vector<int64_t> ids;
      for (const auto& m : r->elements) {
        int64_t id = 0;
        if (std::from_chars(m.str.data(), m.str.data() + m.str.size(), id).ec == std::errc{})
          ids.push_back(id);
      }
      std::lock_guard lock(mu_);
      celebrities_ = ids;
      celebrities_at_ = now;
      return ids;
    }
    return last;
  }

 private:
  RedisClient& Primary() { return *clients_.front(); }

  const TimelineOptions opt_;
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
  std::thread io_thread_;
  std::mutex mu_;
  std::vector<int64_t> celebrities_;                      // mu_
  std::chrono::steady_clock::time_point celebrities_at_;  // mu_
};

}  // namespace

std::string TimelineMember(const TimelineEntry& e) {
  return Padded(e.photo_id) + ":" + std::to_string(e.owner_id);
}

bool ParseTimelineMember(std::string_view m, TimelineEntry* e) {
  size_t colon = m.find(':');
  if (colon == std::string_view::npos) return false;
  auto a = std::from_chars(m.data(), m.data() + colon, e->photo_id);
  auto b = std::from_chars(m.data() + colon + 1, m.data() + m.size(), e->owner_id);
  return a.ec == std::errc{} && a.ptr == m.data() + colon && b.ec == std::errc{} &&
         b.ptr == m.data() + m.size() && e->photo_id > 0;
}

std::unique_ptr<TimelineStore> OpenRedisTimelines(TimelineOptions options) {
  if (options.nodes.empty()) throw std::invalid_argument("timelines need at least one node");
  return std::make_unique<RedisTimelines>(std::move(options));
}

}  // namespace millions::cache
