// Member routing, read-your-writes and retries for the PostgreSQL store (pg_executor.h).
#include "data/pg_executor.h"

#include <vector>

#include "data/facet_store.h"

namespace millions::data {
namespace {

void Counted(metrics::Counter* c) {
  if (c) c->Inc();
}

}  // namespace

void PgExecutor::RegisterMetrics(metrics::Registry& registry) {
  auto get = [&](const char* role, const char* kind) {
    return &registry.GetCounter(
        "millions_db_queries_total", "Database statements by the member role that ran them.",
        {{"shard", cluster_.shard()}, {"member_role", role}, {"kind", kind}});
  };
  counters_ = {get("primary", "read"), get("replica", "read"), get("primary", "write")};
  for (const auto& name : cluster_.MemberNames())
    member_reads_[name] = &registry.GetCounter("millions_db_member_reads_total",
                                               "Reads served by each database member.",
                                               {{"shard", cluster_.shard()}, {"member", name}});
  registry.AddCollector([this](metrics::Families* out) { cluster_.CollectMetrics(out); });
}

Status PgExecutor::ReadOn(Consistency c, const Attempt& attempt) {
  Need need = c == Consistency::kReplica ? Need::kReplica : Need::kPrimary;
  std::vector<std::string> avoid;
  Error last = MakeError(Errc::kUnavailable, "database_unavailable", "no member answered");
  for (int i = 0; i < 3; ++i) {
    auto lease = cluster_.Acquire(need, avoid);
    if (!lease.ok()) return lease.error();
    NoteMember(lease->member);
    Counted(lease->primary ? counters_.primary_read : counters_.replica_read);
    if (auto it = member_reads_.find(lease->member); it != member_reads_.end()) it->second->Inc();
    Status r = attempt(*lease->conn);
    if (r.ok()) return r;
    if (r.error().status() == 404 && !lease->primary) {
      need = Need::kPrimary;
      continue;
    }
    if (lease->conn->healthy()) return r;  // the statement's own error, not the member's
    cluster_.MarkDown(lease->member);
    avoid.push_back(lease->member);
    last = r.error();
  }
  return last;
}

Status PgExecutor::WriteOn(const Attempt& attempt) {
  auto lease = cluster_.Acquire(Need::kPrimary);
  if (!lease.ok()) return lease.error();
  NoteMember(lease->member);
  Counted(counters_.primary_write);
  Status r = attempt(*lease->conn);
  if (!r.ok() && !lease->conn->healthy()) cluster_.MarkDown(lease->member);
  return r;
}

Status PgExecutor::Run(const char* name, const char* sql, std::initializer_list<pg::Param> params) {
  return Write<Unit>([&](pg::Conn& c) -> Result<Unit> {
    auto r = c.Exec(name, sql, params);
    if (!r.ok()) return r.error();
    return Unit{};
  });
}

Status PgExecutor::RunFor(int64_t user, const char* name, const char* sql,
                          std::initializer_list<pg::Param> params) {
  Wrote(user);
  return Run(name, sql, params);
}

void PgExecutor::Wrote(int64_t user) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kReadYourWritesMs);
  std::lock_guard lock(recent_mu_);
  if (recent_.size() > 100000) recent_.clear();  // bounded; the window is short anyway
  recent_[user] = until;
}

Consistency PgExecutor::ForUser(Consistency c, int64_t user) {
  if (c == Consistency::kPrimary) return c;
  std::lock_guard lock(recent_mu_);
  auto it = recent_.find(user);
  if (it == recent_.end()) return c;
  if (it->second < std::chrono::steady_clock::now()) {
    recent_.erase(it);
    return c;
  }
  return Consistency::kPrimary;
}

}  // namespace millions::data
