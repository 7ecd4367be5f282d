#include "data/pg_cluster.h"

#include <algorithm>
#include <boost/json.hpp>

#include "core/config.h"
#include "core/http_client.h"
#include "core/log.h"

namespace millions::data {

using Clock = std::chrono::steady_clock;

uint64_t ParseLsn(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= text.size()) return 0;
  auto hex = [](std::string_view s, uint64_t* out) {
    uint64_t v = 0;
    for (char ch : s) {
      int d = (ch >= '0' && ch <= '9')   ? ch - '0'
              : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
              : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                                         : -1;
      if (d < 0 || v > (UINT64_MAX >> 4)) return false;
      v = (v << 4) | static_cast<uint64_t>(d);
    }
    *out = v;
    return true;
  };
  uint64_t hi = 0, lo = 0;
  if (!hex(text.substr(0, slash), &hi) || !hex(text.substr(slash + 1), &lo)) return 0;
  if (hi > 0xFFFFFFFFull || lo > 0xFFFFFFFFull) return 0;
  return (hi << 32) | lo;
}

int PickMember(const ClusterView& view, Need need, int64_t max_lag_bytes, uint64_t spread,
               const std::vector<std::string>& avoid, const std::string& local_dc) {
  auto avoided = [&](const MemberState& m) {
    return std::find(avoid.begin(), avoid.end(), m.name) != avoid.end();
  };
  bool primary_ok = view.primary >= 0 && !avoided(view.members[static_cast<size_t>(view.primary)]);
  if (need == Need::kReplica) {
    std::vector<int> ok, local;
    for (size_t i = 0; i < view.members.size(); ++i) {
      const auto& m = view.members[i];
      if (m.reachable && !m.primary && !avoided(m) && m.lag_bytes >= 0 &&
          m.lag_bytes <= max_lag_bytes) {
        ok.push_back(static_cast<int>(i));
        if (!local_dc.empty() && m.dc == local_dc) local.push_back(static_cast<int>(i));
      }
    }
    if (!local.empty()) return local[spread % local.size()];
    if (!local_dc.empty() && primary_ok &&
        view.members[static_cast<size_t>(view.primary)].dc == local_dc)
      return view.primary;
    if (!ok.empty()) return ok[spread % ok.size()];
  }
  return primary_ok ? view.primary : -1;
}

int PickPrimary(const ClusterView& view, const std::vector<int>& primaries,
                const std::string& leader) {
  uint32_t top = 0;
  for (int i : primaries) top = std::max(top, view.members[static_cast<size_t>(i)].timeline);
  std::vector<int> newest;
  for (int i : primaries)
    if (view.members[static_cast<size_t>(i)].timeline == top) newest.push_back(i);
  if (newest.size() == 1) return newest.front();
  for (int i : newest)
    if (view.members[static_cast<size_t>(i)].name == leader) return i;
  return -1;
}

namespace {

std::string Conninfo(const ClusterOptions& o, const ClusterOptions::Member& m, const char* app) {
  if (!m.conninfo.empty()) return m.conninfo + " application_name=" + app;
  return "host=" + m.host + " port=" + std::to_string(m.port) + " dbname=" + o.database +
         " user=" + o.user + " application_name=" + app;
}

}  // namespace

PgCluster::PgCluster(ClusterOptions options) : opt_(std::move(options)) {
  for (const auto& m : opt_.members) {
    pg::Options po;
    po.conninfo = Conninfo(opt_, m, "millions");
    po.pool_size = opt_.pool_size;
    po.connect_timeout_s = opt_.connect_timeout_s;
    po.statement_timeout_ms = opt_.statement_timeout_ms;
    pools_[m.name] = std::make_unique<pg::Pool>(po);
    pg::Options probe;
    probe.conninfo = Conninfo(opt_, m, "millions-probe");
    probe.pool_size = 1;
    probe.connect_timeout_s = 2;
    probe.statement_timeout_ms = 1000;
    probes_[m.name] = std::make_unique<pg::Pool>(probe);
  }
  view_.store(std::make_shared<const ClusterView>());
  PollOnce();  // a first view before serving, when the cluster is up
  poller_ = std::thread([this] { PollLoop(); });
}

PgCluster::~PgCluster() {
  {
    std::lock_guard lock(poll_mu_);
    stop_ = true;
  }
  poll_cv_.notify_all();
  poller_.join();
}

void PgCluster::PollLoop() {
  for (;;) {
    {
      std::unique_lock lock(poll_mu_);
      poll_cv_.wait_for(lock, opt_.poll_interval, [&] { return stop_ || poll_now_; });
      if (stop_) return;
      poll_now_ = false;
    }
    PollOnce();
  }
}

std::string PgCluster::LeaderFromPatroni() {
  for (const auto& m : opt_.members) {
    if (m.rest.empty()) continue;
    auto hp = config::ParseHostPort(m.rest);
    http::FetchRequest r;
    r.host = hp.host;
    r.port = hp.port;
    r.target = "/cluster";
    r.timeout = std::chrono::milliseconds(500);
    auto res = http::Fetch(r);
    if (!res.ok() || res->status != 200) continue;
    boost::system::error_code ec;
    auto v = boost::json::parse(res->body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("members")) continue;
    for (const auto& mv : v.at("members").as_array()) {
      const auto& o = mv.as_object();
      if (o.contains("role") && o.at("role") == "leader" && o.contains("name"))
        return std::string(o.at("name").as_string());
    }
  }
  return "";
}

void PgCluster::PollOnce() {
  auto next = std::make_shared<ClusterView>();
  for (const auto& m : opt_.members) {
    MemberState s;
    s.name = m.name;
    s.host = m.host;
    s.port = m.port;
    s.dc = m.dc;
    auto lease = probes_[m.name]->Acquire();
    if (lease.ok()) {
      auto r = (*lease)->Exec(
          "probe",
          "SELECT pg_is_in_recovery()::text, (CASE WHEN pg_is_in_recovery()"
          " THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,"
          " COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)::text,"
          // The timeline a primary writes on: the first 8 hex digits of its WAL file's name.
          " CASE WHEN pg_is_in_recovery() THEN '' ELSE"
          " pg_walfile_name(pg_current_wal_lsn()) END",
          {});
      if (r.ok() && r->size() == 1) {
        s.reachable = true;
        s.primary = r->Text(0, 0) == "false";
        s.lsn = ParseLsn(r->Text(0, 1));
        s.lag_seconds = std::strtod(r->Text(0, 2).c_str(), nullptr);
        std::string wal = r->Text(0, 3);
        if (wal.size() >= 8)
          s.timeline = static_cast<uint32_t>(std::strtoul(wal.substr(0, 8).c_str(), nullptr, 16));
      }
    }
    next->members.push_back(std::move(s));
  }
  std::vector<int> primaries;
  for (size_t i = 0; i < next->members.size(); ++i)
    if (next->members[i].reachable && next->members[i].primary)
      primaries.push_back(static_cast<int>(i));
  if (primaries.size() == 1) {
    next->primary = primaries.front();
  } else if (primaries.size() > 1) {
    // Two members take writes (an old primary not yet fenced, or another DC's cluster just
    // promoted): the newest timeline, then Patroni's leader.
    next->primary = PickPrimary(*next, primaries, LeaderFromPatroni());
  }
  // Lag is measured from the primary's position, or, while there is none (failover), from
  // the most advanced member: replicas keep serving reads through a failover.
  uint64_t head = 0;
  if (next->primary >= 0) {
    head = next->members[static_cast<size_t>(next->primary)].lsn;
  } else {
    for (const auto& s : next->members)
      if (s.reachable) head = std::max(head, s.lsn);
  }
  {
    for (auto& s : next->members) {
      if (!s.reachable || s.primary) continue;
      s.lag_bytes = head > s.lsn ? static_cast<int64_t>(head - s.lsn) : 0;
      if (s.lag_bytes == 0) s.lag_seconds = 0;  // idle, not behind
    }
  }
  {
    std::lock_guard lock(down_mu_);
    for (const auto& s : next->members)
      if (s.reachable) down_.erase(s.name);
  }
  std::string primary =
      next->primary >= 0 ? next->members[static_cast<size_t>(next->primary)].name : "";
  if (!primary.empty() && primary != last_primary_) {
    if (!last_primary_.empty()) {
      failovers_.fetch_add(1);
      log::Warn("primary changed", {{"from", last_primary_}, {"to", primary}});
    }
    last_primary_ = primary;
  }
  view_.store(std::move(next));
}

void PgCluster::MarkDown(const std::string& member) {
  {
    std::lock_guard lock(down_mu_);
    down_[member] = Clock::now();
  }
  {
    std::lock_guard lock(poll_mu_);
    poll_now_ = true;
  }
  poll_cv_.notify_all();
}

Result<PgCluster::Lease> PgCluster::Acquire(Need need, const std::vector<std::string>& avoid) {
  auto deadline =
      Clock::now() + (need == Need::kPrimary ? opt_.failover_wait : std::chrono::milliseconds(0));
  Error last = MakeError(Errc::kUnavailable, "database_unavailable",
                         "no PostgreSQL member can serve this (failover in progress?)");
  for (;;) {
    auto view = view_.load();
    std::vector<std::string> skip = avoid;
    {
      std::lock_guard lock(down_mu_);
      for (const auto& [name, when] : down_) skip.push_back(name);
    }
    for (;;) {
      int idx = PickMember(*view, need, opt_.max_replica_lag_bytes, spread_.fetch_add(1), skip,
                           opt_.local_dc);
      if (idx < 0) break;
      const MemberState& m = view->members[static_cast<size_t>(idx)];
      auto lease = pools_.at(m.name)->Acquire();
      if (lease.ok()) return Lease{std::move(*lease), m.name, m.primary};
      last = lease.error();
      if (last.code == "database_busy") return last;  // overloaded, not gone
      MarkDown(m.name);
      skip.push_back(m.name);
    }
    if (Clock::now() >= deadline) return last;
    // No member for this now: a failover is under way. Ask the poller to look again.
    {
      std::lock_guard lock(poll_mu_);
      poll_now_ = true;
    }
    poll_cv_.notify_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void PgCluster::CollectMetrics(metrics::Families* out) const {
  auto view = view_.load();
  auto up =
      metrics::AddGauge(out, "millions_db_member_up", "1 when the data layer reaches the member.");
  for (const auto& m : view->members)
    up.Add({{"shard", opt_.shard},
            {"member", m.name},
            {"member_role", m.primary ? "primary" : "replica"}},
           m.reachable ? 1 : 0);
  auto lag_bytes = metrics::AddGauge(out, "millions_db_replica_lag_bytes",
                                     "WAL bytes a replica has yet to replay.");
  for (const auto& m : view->members)
    if (m.reachable && !m.primary && m.lag_bytes >= 0)
      lag_bytes.Add({{"shard", opt_.shard}, {"member", m.name}}, static_cast<double>(m.lag_bytes));
  auto lag_seconds =
      metrics::AddGauge(out, "millions_db_replica_lag_seconds",
                        "Age of the last replayed transaction while a replica is behind.");
  for (const auto& m : view->members)
    if (m.reachable && !m.primary)
      lag_seconds.Add({{"shard", opt_.shard}, {"member", m.name}}, m.lag_seconds);
  metrics::AddCounter(out, "millions_db_failovers_total",
                      "Primary changes the data layer has seen.")
      .Add({{"shard", opt_.shard}}, static_cast<double>(failovers_.load()));
}

}  // namespace millions::data
