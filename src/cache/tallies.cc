#include "cache/tallies.h"

#include <algorithm>
#include <cstdlib>

namespace millions::cache {

using std::chrono::milliseconds;

// ---- LocalTallies ----

void LocalTallies::DropExpired() {
  Time now = env_.Now();
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.expires <= now) {
      members_ -= it->second.members.size();
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

LocalTallies::Entry* LocalTallies::Live(const std::string& key) {
  // A few dozen keys a day, each touched at most once a second: a full pass is cheap.
  DropExpired();
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

Status LocalTallies::AddMembers(const std::string& key, const std::vector<int64_t>& members,
                                milliseconds ttl) {
  std::lock_guard lock(mu_);
  Entry* e = Live(key);
  if (!e) e = &entries_[key];
  e->expires = env_.Now() + ttl;
  for (int64_t m : members) {
    if (members_ >= max_members_) break;
    if (e->members.insert(m).second) ++members_;
  }
  return Ok();
}

Status LocalTallies::AddCount(const std::string& key, int64_t n, milliseconds ttl) {
  std::lock_guard lock(mu_);
  Entry* e = Live(key);
  if (!e) e = &entries_[key];
  e->expires = env_.Now() + ttl;
  e->count += n;
  return Ok();
}

Result<int64_t> LocalTallies::Distinct(const std::string& key) {
  std::lock_guard lock(mu_);
  Entry* e = Live(key);
  return e ? static_cast<int64_t>(e->members.size()) : 0;
}

Result<int64_t> LocalTallies::Count(const std::string& key) {
  std::lock_guard lock(mu_);
  Entry* e = Live(key);
  return e ? e->count : 0;
}

size_t LocalTallies::keys() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

// ---- RedisTallies ----

namespace {

Error BadReply() {
  return MakeError(Errc::kUnavailable, "cache_unavailable", "unexpected reply from a cache node");
}

std::string Ms(milliseconds d) { return std::to_string(std::max<int64_t>(1, d.count())); }

// Runs `cmds` on `key`'s owner; every reply must be an integer.
Result<std::vector<RedisReply>> Integers(L2& l2, const std::string& key,
                                         std::vector<std::vector<std::string>> cmds) {
  size_t n = cmds.size();
  auto r = l2.Run(key, std::move(cmds));
  if (!r.ok()) return r.error();
  if (r->size() != n) return BadReply();
  for (const auto& reply : *r)
    if (reply.type != RedisReply::Type::kInteger) return BadReply();
  return r;
}

}  // namespace

Status RedisTallies::AddMembers(const std::string& key, const std::vector<int64_t>& members,
                                milliseconds ttl) {
  // In commands of at most 1000 members, one round trip for all of them.
  constexpr size_t kChunk = 1000;
  std::vector<std::vector<std::string>> cmds;
  for (size_t i = 0; i < members.size(); i += kChunk) {
    std::vector<std::string> cmd{"PFADD", key};
    for (size_t j = i; j < std::min(members.size(), i + kChunk); ++j)
      cmd.push_back(std::to_string(members[j]));
    cmds.push_back(std::move(cmd));
  }
  if (cmds.empty()) return Ok();
  cmds.push_back({"PEXPIRE", key, Ms(ttl)});
  auto r = Integers(l2_, key, std::move(cmds));
  if (!r.ok()) return r.error();
  return Ok();
}

Status RedisTallies::AddCount(const std::string& key, int64_t n, milliseconds ttl) {
  auto r = Integers(l2_, key, {{"INCRBY", key, std::to_string(n)}, {"PEXPIRE", key, Ms(ttl)}});
  if (!r.ok()) return r.error();
  return Ok();
}

Result<int64_t> RedisTallies::Distinct(const std::string& key) {
  auto r = Integers(l2_, key, {{"PFCOUNT", key}});
  if (!r.ok()) return r.error();
  return (*r)[0].integer;
}

Result<int64_t> RedisTallies::Count(const std::string& key) {
  auto r = l2_.Run(key, {{"GET", key}});
  if (!r.ok()) return r.error();
  if (r->size() != 1 || (*r)[0].is_error()) return BadReply();
  if ((*r)[0].is_nil()) return int64_t{0};
  return std::strtoll((*r)[0].str.c_str(), nullptr, 10);
}

}  // namespace millions::cache
