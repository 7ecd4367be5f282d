#include "cache/counters.h"

#include <algorithm>

namespace millions::cache {

using std::chrono::milliseconds;

// ---- LocalCounters ----

LocalCounters::Entry* LocalCounters::Live(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  if (it->second.expires <= env_.Now()) {
    EraseLocked(key);
    return nullptr;
  }
  return &it->second;
}

void LocalCounters::SetExpiry(const std::string& key, Entry& e, Time t) {
  by_expiry_.erase({e.expires, key});
  e.expires = t;
  by_expiry_.insert({t, key});
}

void LocalCounters::EraseLocked(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  by_expiry_.erase({it->second.expires, key});
  entries_.erase(it);
}

void LocalCounters::MakeRoom() {
  Time now = env_.Now();
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now)
    EraseLocked(by_expiry_.begin()->second);
  // Still full: the entries nearest their expiry are the ones that matter least.
  while (entries_.size() >= max_keys_ && !by_expiry_.empty())
    EraseLocked(by_expiry_.begin()->second);
}

Result<int64_t> LocalCounters::Increment(const std::string& key, milliseconds ttl, bool sliding) {
  std::lock_guard lock(mu_);
  Entry* e = Live(key);
  if (!e) {
    if (entries_.size() >= max_keys_) MakeRoom();
    e = &entries_[key];
    e->expires = env_.Now() + ttl;
    by_expiry_.insert({e->expires, key});
  } else if (sliding) {
    SetExpiry(key, *e, env_.Now() + ttl);
  }
  return ++e->value;
}

Result<int64_t> LocalCounters::Value(const std::string& key) {
  std::lock_guard lock(mu_);
  Entry* e = Live(key);
  return e ? e->value : 0;
}

Status LocalCounters::Mark(const std::string& key, milliseconds ttl) {
  std::lock_guard lock(mu_);
  Entry* e = Live(key);
  if (!e) {
    if (entries_.size() >= max_keys_) MakeRoom();
    e = &entries_[key];
    e->expires = env_.Now() + ttl;
    by_expiry_.insert({e->expires, key});
  } else {
    SetExpiry(key, *e, env_.Now() + ttl);
  }
  e->value = 1;
  return Ok();
}

Result<int64_t> LocalCounters::Remaining(const std::string& key) {
  std::lock_guard lock(mu_);
  Entry* e = Live(key);
  if (!e) return int64_t{0};
  return std::chrono::duration_cast<milliseconds>(e->expires - env_.Now()).count();
}

Status LocalCounters::Expire(const std::string& key, milliseconds ttl) {
  std::lock_guard lock(mu_);
  if (Entry* e = Live(key)) SetExpiry(key, *e, env_.Now() + ttl);
  return Ok();
}

Status LocalCounters::Remove(const std::string& key) {
  std::lock_guard lock(mu_);
  EraseLocked(key);
  return Ok();
}

size_t LocalCounters::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

// ---- RedisCounters ----

namespace {

std::string Ms(milliseconds d) { return std::to_string(std::max<int64_t>(1, d.count())); }

Error BadReply() {
  return MakeError(Errc::kUnavailable, "cache_unavailable", "unexpected reply from a cache node");
}

}  // namespace

Result<RedisReply> RedisCounters::One(const std::string& key, std::vector<std::string> argv) {
  std::vector<std::vector<std::string>> cmds;
  cmds.push_back(std::move(argv));
  auto r = l2_.Run(key, std::move(cmds));
  if (!r.ok()) return r.error();
  if (r->size() != 1 || (*r)[0].is_error()) return BadReply();
  return std::move((*r)[0]);
}

Result<int64_t> RedisCounters::Increment(const std::string& key, milliseconds ttl, bool sliding) {
  std::vector<std::vector<std::string>> cmds{{"INCR", key}};
  // NX (Redis 7): the expiry is set by the first increment only, unless it slides.
  if (sliding)
    cmds.push_back({"PEXPIRE", key, Ms(ttl)});
  else
    cmds.push_back({"PEXPIRE", key, Ms(ttl), "NX"});
  auto r = l2_.Run(key, std::move(cmds));
  if (!r.ok()) return r.error();
  // An error on PEXPIRE (a server before Redis 7 has no NX) would leave a key that never
  // expires: not a count to rely on.
  if (r->size() != 2 || (*r)[0].type != RedisReply::Type::kInteger || (*r)[1].is_error())
    return BadReply();
  return (*r)[0].integer;
}

Result<int64_t> RedisCounters::Value(const std::string& key) {
  auto r = One(key, {"GET", key});
  if (!r.ok()) return r.error();
  if (r->is_nil()) return int64_t{0};
  return std::strtoll(r->str.c_str(), nullptr, 10);
}

Status RedisCounters::Mark(const std::string& key, milliseconds ttl) {
  auto r = One(key, {"SET", key, "1", "PX", Ms(ttl)});
  if (!r.ok()) return r.error();
  return Ok();
}

Result<int64_t> RedisCounters::Remaining(const std::string& key) {
  auto r = One(key, {"PTTL", key});
  if (!r.ok()) return r.error();
  if (r->type != RedisReply::Type::kInteger) return BadReply();
  return std::max<int64_t>(0, r->integer);  // -2: absent; -1: no expiry (never set by us)
}

Status RedisCounters::Expire(const std::string& key, milliseconds ttl) {
  auto r = One(key, {"PEXPIRE", key, Ms(ttl)});
  if (!r.ok()) return r.error();
  return Ok();
}

Status RedisCounters::Remove(const std::string& key) {
  auto r = One(key, {"DEL", key});
  if (!r.ok()) return r.error();
  return Ok();
}

// ---- FallbackCounters ----

template <class F>
auto FallbackCounters::Either(F f) -> decltype(f(std::declval<Counters&>())) {
  auto r = f(*shared_);
  if (r.ok()) return r;
  if (on_fallback_) on_fallback_();
  return f(*local_);
}

Result<int64_t> FallbackCounters::Increment(const std::string& key, milliseconds ttl,
                                            bool sliding) {
  return Either([&](Counters& c) { return c.Increment(key, ttl, sliding); });
}
Result<int64_t> FallbackCounters::Value(const std::string& key) {
  return Either([&](Counters& c) { return c.Value(key); });
}
Status FallbackCounters::Mark(const std::string& key, milliseconds ttl) {
  return Either([&](Counters& c) { return c.Mark(key, ttl); });
}
Result<int64_t> FallbackCounters::Remaining(const std::string& key) {
  return Either([&](Counters& c) { return c.Remaining(key); });
}
Status FallbackCounters::Expire(const std::string& key, milliseconds ttl) {
  return Either([&](Counters& c) { return c.Expire(key, ttl); });
}
Status FallbackCounters::Remove(const std::string& key) {
  return Either([&](Counters& c) { return c.Remove(key); });
}

}  // namespace millions::cache
