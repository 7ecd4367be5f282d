#include "cache/l2.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "cache/hash_ring.h"
#include "cache/redis_client.h"
#include "core/env.h"

namespace millions::cache {
namespace {

using R = RedisReply::Type;

// Fill: store the value only while our lease stands. A delete since our lease removed it (or a
// newer lease replaced it), so a stale load cannot overwrite a newer state.
constexpr const char* kFillScript =
    "if redis.call('GET', KEYS[2]) == ARGV[1] then "
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) redis.call('DEL', KEYS[2]) return 1 end "
    "return 0";
// A miss's lease, decided atomically with a second look at the key: between the caller's GET
// and this, another node may have filled it (then it is returned, and nobody loads twice).
// Returns {1, value} | {2, recent_write} (lease granted) | {3, recent_write} (held elsewhere).
constexpr const char* kLeaseScript =
    "local v = redis.call('GET', KEYS[1]) if v then return {1, v} end "
    "local w = redis.call('EXISTS', KEYS[3]) "
    "if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, w} end "
    "return {3, w}";
// An early refresh's lease: only for the version the caller saw.
constexpr const char* kRefreshScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v or string.sub(v, 1, string.len(ARGV[3])) ~= ARGV[3] then return 0 end "
    "if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end return 0";
constexpr const char* kReleaseScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 0";

std::string LeaseKey(const std::string& key) { return key + "#l"; }
std::string MarkerKey(const std::string& key) { return key + "#w"; }

class RedisL2 final : public L2 {
 public:
  RedisL2(RedisL2Options o, Env& env) : opt_(std::move(o)), env_(env), work_(ioc_.get_executor()) {
    std::vector<std::string> names;
    for (const auto& n : opt_.nodes) names.push_back(n.name);
    ring_ = std::make_unique<HashRing>(names);
    for (const auto& n : opt_.nodes) {
      RedisOptions ro;
      ro.host = n.host;
      ro.port = n.port;
      ro.command_timeout = opt_.timeout;
      ro.connect_timeout = std::max(opt_.timeout * 2, std::chrono::milliseconds(200));
      ro.flush_on_reconnect = true;
      ro.user = opt_.user;
      ro.password = opt_.password;
      clients_.push_back(RedisClient::Create(ioc_, ro));
      evicted_.push_back(std::make_unique<std::atomic<uint64_t>>(0));
      if (opt_.on_invalidate) {
        RedisOptions so = ro;
        so.flush_on_reconnect = false;
        auto cb = opt_.on_invalidate;
        subscribers_.push_back(RedisSubscriber::Create(
            ioc_, so, {opt_.channel},
            [cb](const std::string&, const std::string& payload) { cb(SplitKeys(payload)); }));
      }
    }
    io_thread_ = std::thread([this] { ioc_.run(); });
    poller_ = std::thread([this] { PollInfo(); });
  }

  ~RedisL2() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    poller_.join();
    for (auto& s : subscribers_) s->Close();
    for (auto& c : clients_) c->Close();
    work_.reset();
    ioc_.stop();
    io_thread_.join();
  }

  L2Lookup Get(const std::string& key) override {
    L2Lookup out;
    RedisClient* c = Route(key);
    if (!c) return out;
    auto v = c->Call({"GET", key});
    if (!v.ok() || v->is_error()) return out;
    if (v->type == R::kString) {
      out.kind = L2Lookup::Kind::kHit;
      out.value = std::move(v->str);
      return out;
    }
    std::string token = NewToken();
    auto r = c->Call(
        {"EVAL", kLeaseScript, "3", key, LeaseKey(key), MarkerKey(key), token, Ms(opt_.lease)});
    if (!r.ok() || r->type != R::kArray || r->elements.size() != 2 ||
        r->elements[0].type != R::kInteger)
      return out;
    auto& e = r->elements;
    if (e[0].integer == 1 && e[1].type == R::kString) {
      out.kind = L2Lookup::Kind::kHit;
      out.value = std::move(e[1].str);
      return out;
    }
    out.recent_write = e[1].type == R::kInteger && e[1].integer > 0;
    if (e[0].integer == 2) {
      out.kind = L2Lookup::Kind::kLease;
      out.token = std::move(token);
    } else {
      out.kind = L2Lookup::Kind::kWait;
    }
    return out;
  }

  std::string TryLease(const std::string& key, const std::string& seen_prefix) override {
    RedisClient* c = Route(key);
    if (!c) return "";
    std::string token = NewToken();
    auto r = c->Call(
        {"EVAL", kRefreshScript, "2", key, LeaseKey(key), token, Ms(opt_.lease), seen_prefix});
    return r.ok() && r->type == R::kInteger && r->integer == 1 ? token : "";
  }

  bool Fill(const std::string& key, const std::string& token, const std::string& value,
            std::chrono::milliseconds ttl) override {
    RedisClient* c = Route(key);
    if (!c) return false;
    auto r = c->Call({"EVAL", kFillScript, "2", key, LeaseKey(key), token, value,
                      Ms(std::max(ttl, std::chrono::milliseconds(1)))});
    return r.ok() && r->type == R::kInteger && r->integer == 1;
  }

  void Release(const std::string& key, const std::string& token) override {
    if (RedisClient* c = Route(key))
      (void)c->Call({"EVAL", kReleaseScript, "1", LeaseKey(key), token});
  }

  void Delete(const std::vector<std::string>& keys) override {
    // Per node: one DEL of the keys and their leases, and the recent-write markers.
    std::map<int, std::vector<std::vector<std::string>>> per_node;
    for (const auto& k : keys) {
      auto [owner, next] = ring_->OwnerAndSuccessor(k);
      for (int n : {owner, next}) {
        if (n < 0 || !clients_[size_t(n)]->Connected()) continue;
        auto& cmds = per_node[n];
        cmds.push_back({"DEL", k, LeaseKey(k)});
        cmds.push_back({"SET", MarkerKey(k), "1", "PX", Ms(opt_.write_marker)});
      }
    }
    for (auto& [n, cmds] : per_node) (void)clients_[size_t(n)]->CallMany(std::move(cmds));
  }

  void Publish(const std::vector<std::string>& keys) override {
    if (keys.empty()) return;
    // One node carries the message: every web node subscribes on every node.
    for (auto& c : clients_) {
      if (!c->Connected()) continue;
      c->Send({"PUBLISH", opt_.channel, JoinKeys(keys)}, [](Result<RedisReply>) {});
      return;
    }
  }

  Result<std::vector<RedisReply>> Run(const std::string& key,
                                      std::vector<std::vector<std::string>> cmds) override {
    RedisClient* c = Route(key);
    if (!c) return MakeError(Errc::kUnavailable, "cache_unavailable", "no cache node is up");
    return c->CallMany(std::move(cmds));
  }

  std::vector<L2NodeStats> Stats() const override {
    std::vector<L2NodeStats> out;
    for (size_t i = 0; i < clients_.size(); ++i) {
      auto s = clients_[i]->Stats();
      out.push_back({opt_.nodes[i].name, clients_[i]->Connected(), evicted_[i]->load(), s.connects,
                     s.flushes, s.timeouts});
    }
    return out;
  }

 private:
  static std::string Ms(std::chrono::milliseconds d) { return std::to_string(d.count()); }

  RedisClient* Route(const std::string& key) {
    int n = ring_->Route(key, [this](size_t i) { return clients_[i]->Connected(); });
    return n < 0 ? nullptr : clients_[size_t(n)].get();
  }

  // Unique, not secret: a per-thread counter after a random prefix.
  std::string NewToken() {
    thread_local uint64_t prefix = [this] {
      uint64_t v;
      env_.RandomBytes(&v, sizeof v);
      return v;
    }();
    thread_local uint64_t counter = 0;
    return std::to_string(prefix) + "." + std::to_string(++counter);
  }

  // Evictions happen inside Redis; INFO stats reports them.
  void PollInfo() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      for (size_t i = 0; i < clients_.size(); ++i) {
        if (!clients_[i]->Connected()) continue;
        auto r = clients_[i]->Call({"INFO", "stats"});
        if (!r.ok() || r->type != R::kString) continue;
        auto at = r->str.find("evicted_keys:");
        if (at != std::string::npos)
          evicted_[i]->store(std::strtoull(r->str.c_str() + at + 13, nullptr, 10));
      }
      lock.lock();
      cv_.wait_for(lock, std::chrono::seconds(2), [this] { return stopping_; });
    }
  }

  RedisL2Options opt_;
  Env& env_;
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::unique_ptr<HashRing> ring_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
  std::vector<std::unique_ptr<RedisSubscriber>> subscribers_;
  std::vector<std::unique_ptr<std::atomic<uint64_t>>> evicted_;
  std::thread io_thread_, poller_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace

std::string JoinKeys(const std::vector<std::string>& keys) {
  std::string s;
  for (const auto& k : keys) {
    if (!s.empty()) s += '\n';
    s += k;
  }
  return s;
}

std::vector<std::string> SplitKeys(const std::string& payload) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= payload.size()) {
    size_t nl = payload.find('\n', start);
    if (nl == std::string::npos) nl = payload.size();
    if (nl > start) out.push_back(payload.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

std::unique_ptr<L2> OpenRedisL2(RedisL2Options options, Env& env) {
  return std::make_unique<RedisL2>(std::move(options), env);
}

}  // namespace millions::cache
