// DC failover (docs/datacentres.md): with [postgres] primary_dc, each DC's postgres nodes are a
// Patroni cluster of their own, and every cluster but the one taking writes is a standby cluster
// of it. `millions dc failover DC` (planned) fences the primary cluster by making it a standby
// cluster of DC's, waits until DC's standby leader has replayed the old primary's last WAL
// position (RPO 0), then promotes DC's cluster (PATCH /config standby_cluster: null). The
// monitor thread (DcLoop) does the unplanned one: when the primary DC's balancers and database
// members have all been unreachable for [postgres] dc_failover_after_ms, it promotes the first
// standby cluster it reaches, fences the lost cluster's configuration in etcd, and has its
// members rebuilt from the new primary when they start again.
//
// Each operation runs on a thread of its own (never on the admin API's event loop); the API
// starts it and reports it (GET /api/dc).
#include <filesystem>
#include <thread>

#include "core/config.h"
#include "core/http_client.h"
#include "core/pg.h"
#include "ctl/recipes/patroni.h"
#include "ctl/recipes/recipes.h"
#include "ctl/runner_internal.h"
#include "ctl/secrets.h"
#include "data/pg_cluster.h"
#include "data/shard_map_etcd.h"

namespace millions::ctl::detail {

namespace {

struct MemberPg {
  bool reachable = false;
  bool recovery = false;
  uint64_t lsn = 0;  // replayed (in recovery) or current (primary)
};

pg::Options SuperPg(const std::string& run, const topo::NodeEntry& e) {
  auto hp = config::ParseHostPort(e.listen);
  pg::Options o;
  o.conninfo = "host=" + hp.host + " port=" + std::to_string(hp.port) +
               " dbname=postgres user=postgres application_name=millions-dc passfile=" +
               secrets::Path(run, secrets::kPgPassAll);
  o.pool_size = 1;
  o.connect_timeout_s = 1;
  o.statement_timeout_ms = 2000;
  return o;
}

// Over `pool`, the runner's sessions to the member (kept open: a probe every 250 ms should not
// cost a SCRAM handshake each). A session the member dropped (a restart) fails one probe and is
// replaced at the next.
MemberPg Probe(pg::Pool& pool) {
  MemberPg m;
  auto c = pool.Acquire();
  if (!c.ok()) return m;
  auto r = (*c)->Exec("dc_probe",
                      "SELECT pg_is_in_recovery()::text, (CASE WHEN pg_is_in_recovery()"
                      " THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text",
                      {});
  if (!r.ok() || r->size() != 1) return m;
  m.reachable = true;
  m.recovery = r->Text(0, 0) == "true";
  m.lsn = data::ParseLsn(r->Text(0, 1));
  return m;
}

// A write on `e` (an xid is assigned and committed): the proof that the DC takes writes.
bool WriteOn(pg::Pool& pool) {
  auto c = pool.Acquire();
  if (!c.ok()) return false;
  return (*c)->Exec("dc_write", "SELECT txid_current()", {}).ok();
}

std::string Lsn(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(v >> 32),
           static_cast<unsigned>(v & 0xFFFFFFFF));
  return buf;
}

// The standby_cluster value that streams from `source` (one member: see recipes/patroni.cc).
json::object StandbyConfig(const topo::NodeEntry& source) {
  auto hp = config::ParseHostPort(source.listen);
  return json::object{
      {"host", hp.host}, {"port", hp.port}, {"create_replica_methods", json::array{"basebackup"}}};
}

// PATCH /config on the first member of `c` whose Patroni takes it. "" or why not.
std::string PatchConfig(const std::string& run, const topo::PgClusterEntry& c,
                        const json::object& body) {
  std::string why;
  for (const auto& e : c.nodes) {
    auto hp = config::ParseHostPort(e.rest);
    http::FetchRequest r;
    r.method = "PATCH";
    r.host = hp.host;
    r.port = hp.port;
    r.target = "/config";
    r.body = json::serialize(body);
    r.content_type = "application/json";
    r.authorization = secrets::PatroniRestAuthorization(run);
    r.timeout = milliseconds(3000);
    auto res = http::Fetch(r);
    if (res.ok() && res->status == 200) return "";
    why += " " + e.name + ": " +
           (res.ok() ? std::to_string(res->status) + " " + res->body : res.error().message);
  }
  return "no Patroni of " + c.scope + " took the configuration:" + why;
}

// The standby_cluster of `c`'s dynamic configuration (GET /config): 1 set, 0 absent, -1 no
// member answered.
int IsStandby(const topo::PgClusterEntry& c) {
  for (const auto& e : c.nodes) {
    auto hp = config::ParseHostPort(e.rest);
    http::FetchRequest r;
    r.host = hp.host;
    r.port = hp.port;
    r.target = "/config";
    r.timeout = milliseconds(1000);
    auto res = http::Fetch(r);
    if (!res.ok() || res->status != 200) continue;
    boost::system::error_code ec;
    auto v = json::parse(res->body, ec);
    if (ec || !v.is_object()) continue;
    const auto* s = v.as_object().if_contains("standby_cluster");
    return s && s->is_object() && !s->as_object().empty() ? 1 : 0;
  }
  return -1;
}

bool TcpOpen(const std::string& address) {
  auto hp = config::ParseHostPort(address);
  http::FetchRequest r;
  r.host = hp.host;
  r.port = hp.port;
  r.target = "/";
  r.timeout = milliseconds(400);
  return http::Fetch(r).ok();  // any answer, even an error status, is a listener
}

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

pg::Pool& Runner::DcPool(const topo::NodeEntry& e) {
  std::lock_guard lock(dc_mu_);
  auto& pool = dc_pools_[e.name];
  if (!pool) {
    pg::Options o = SuperPg(run_, e);
    o.pool_size = 2;  // the monitor and an operation's thread
    pool = std::make_unique<pg::Pool>(o);
  }
  return *pool;
}

const topo::PgClusterEntry* Runner::DcCluster(const std::string& dc) const {
  for (const auto& c : t_.dc_clusters)
    if (c.dc == dc) return &c;
  return nullptr;
}

void Runner::DcLog(const std::string& line) {
  Event("dc", line);
  std::lock_guard lock(dc_mu_);
  json::value& log = dc_op_["log"];
  if (!log.is_array()) log = json::array{};
  log.as_array().push_back(json::string(line));
}

std::string Runner::DcJson() {
  std::lock_guard lock(dc_mu_);
  json::object o{{"primary_dc", primary_dc_}, {"operation", dc_op_}};
  json::array clusters;
  for (const auto& c : t_.dc_clusters)
    clusters.push_back(json::object{{"dc", c.dc}, {"scope", c.scope}});
  o["clusters"] = std::move(clusters);
  return json::serialize(o);
}

json::array Runner::DcStatus() {
  json::array out;
  std::lock_guard lock(dc_mu_);
  for (const auto& dc : t_.dcs) {
    json::object o{{"dc", dc}};
    if (!t_.dc_clusters.empty()) o["takes_writes"] = dc == primary_dc_;
    if (const topo::PgClusterEntry* c = DcCluster(dc)) {
      o["cluster"] = c->scope;
      if (auto it = dc_lag_.find(c->scope); it != dc_lag_.end() && dc != primary_dc_)
        o["replication_lag_bytes"] = it->second;
    }
    out.push_back(std::move(o));
  }
  return out;
}

std::string Runner::DcStart(const std::string& to, bool planned) {
  if (t_.dc_clusters.size() < 2)
    return "the topology has no standby cluster ([postgres] primary_dc and postgres nodes in "
           "another dc)";
  if (!DcCluster(to)) return "dc " + to + " has no database cluster";
  {
    std::lock_guard lock(dc_mu_);
    if (dc_busy_) return "a dc operation is already running";
    if (to == primary_dc_) return "dc " + to + " already takes writes";
    dc_busy_ = true;
    dc_op_ = json::object{{"kind", planned ? "planned" : "unplanned"},
                          {"from", primary_dc_},
                          {"to", to},
                          {"state", "running"},
                          {"log", json::array{}}};
  }
  std::thread([this, to, planned] {
    std::string err = planned ? DcPlanned(to) : DcUnplanned(to, Clock::now());
    std::lock_guard lock(dc_mu_);
    dc_op_["state"] = err.empty() ? "done" : "failed";
    if (!err.empty()) dc_op_["error"] = err;
    dc_busy_ = false;
  }).detach();
  return "";
}

// Waits up to `limit` for `pred`, polling every 100 ms. False on timeout or stop.
template <class Pred>
static bool WaitFor(Pred pred, milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline && !g_stop) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

// The new primary DC's cluster takes writes: its leader out of recovery and a write committed.
// The member that took it, or nullptr.
const topo::NodeEntry* Runner::DcWaitWrites(const topo::PgClusterEntry& c, milliseconds limit) {
  const topo::NodeEntry* leader = nullptr;
  WaitFor(
      [&] {
        for (const auto& e : c.nodes) {
          MemberPg m = Probe(DcPool(e));
          if (m.reachable && !m.recovery && WriteOn(DcPool(e))) {
            leader = &e;
            return true;
          }
        }
        return false;
      },
      limit);
  return leader;
}

std::string Runner::DcPlanned(const std::string& to) {
  const topo::PgClusterEntry* from = DcCluster(primary_dc_);
  const topo::PgClusterEntry* target = DcCluster(to);
  auto t0 = Clock::now();
  DcLog("planned failover " + from->dc + " -> " + to);
  // The standby leader of the target: the member furthest ahead in recovery.
  auto target_lsn = [&] {
    uint64_t best = 0;
    for (const auto& e : target->nodes)
      if (MemberPg m = Probe(DcPool(e)); m.reachable && m.recovery) best = std::max(best, m.lsn);
    return best;
  };
  if (target_lsn() == 0) return "no member of " + target->scope + " answers as a standby";
  // The member the old cluster will stream from: the target's furthest ahead (its leader).
  const topo::NodeEntry* target_leader = nullptr;
  uint64_t best = 0;
  for (const auto& e : target->nodes)
    if (MemberPg m = Probe(DcPool(e)); m.reachable && m.recovery && m.lsn >= best) {
      best = m.lsn;
      target_leader = &e;
    }
  // 1. Fence: the primary cluster becomes a standby cluster of the target's. Patroni stops its
  // leader at once (an immediate shutdown: its WAL senders may not have sent the last records)
  // and restarts it in recovery, where it replays its own WAL to the end; from now on no write
  // is acknowledged anywhere until the target is promoted. The target gets what it missed by
  // streaming from the old leader (a standby now, cascading).
  uint64_t last = 0;
  for (const auto& e : from->nodes)
    if (MemberPg m = Probe(DcPool(e)); m.reachable && !m.recovery) last = m.lsn;
  if (std::string err =
          PatchConfig(run_, *from, {{"standby_cluster", StandbyConfig(*target_leader)}});
      !err.empty())
    return err;
  DcLog(from->scope + ": standby_cluster set (writes stop); last primary LSN seen " + Lsn(last));
  // Every member that answers is in recovery (one that does not cannot take writes either).
  bool demoted = WaitFor(
      [&] {
        int answered = 0;
        for (const auto& e : from->nodes) {
          MemberPg m = Probe(DcPool(e));
          if (m.reachable && !m.recovery) return false;
          answered += m.reachable;
        }
        return answered > 0;
      },
      milliseconds(30'000));
  auto undo = [&](const std::string& why) {
    PatchConfig(run_, *from, {{"standby_cluster", nullptr}});
    DcLog("aborted, " + from->scope + " takes writes again: " + why);
    return why;
  };
  if (!demoted) return undo(from->scope + " did not stop taking writes within 30 s");
  for (const auto& e : from->nodes) last = std::max(last, Probe(DcPool(e)).lsn);
  DcLog(from->scope + " in recovery at " + Lsn(last) + " after " + std::to_string(Since(t0)) +
        " s");
  // 2. RPO 0: the target has replayed every byte the old primary wrote.
  uint64_t at = 0;
  bool caught_up = WaitFor([&] { return (at = target_lsn()) >= last; }, milliseconds(30'000));
  if (!caught_up)
    return undo(to + " replayed " + Lsn(at) + " of " + Lsn(last) +
                " within 30 s; nothing promoted");
  DcLog(target->scope + " replayed " + Lsn(at) + " >= " + Lsn(last) +
        ": no acknowledged write is lost");
  // 3. Promote the target: Patroni's standby leader becomes the primary.
  if (std::string err = PatchConfig(run_, *target, {{"standby_cluster", nullptr}}); !err.empty())
    return undo(err);
  const topo::NodeEntry* leader = DcWaitWrites(*target, milliseconds(60'000));
  if (!leader) return to + " was promoted but took no write within 60 s";
  double rto = Since(t0);
  {
    std::lock_guard lock(dc_mu_);
    primary_dc_ = to;
    dc_source_[from->scope] = target_leader->name;
    dc_source_.erase(target->scope);
    dc_op_["rto_s"] = rto;
    dc_op_["lost_bytes"] = 0;
    dc_op_["new_primary"] = leader->name;
  }
  char buf[160];
  snprintf(buf, sizeof buf, "%s takes writes on %s: RTO %.2f s, RPO 0 (caught up before promotion)",
           to.c_str(), leader->name.c_str(), rto);
  DcLog(buf);
  // The checkpoint a promotion asks for, done now rather than spread: Patroni waits for it
  // before the new primary can be demoted again (failback) or rewound from.
  pg::Pool pool(SuperPg(run_, *leader));
  if (auto c = pool.Acquire(); c.ok()) (void)(*c)->Simple("CHECKPOINT");
  return "";
}

std::string Runner::DcUnplanned(const std::string& to, Clock::time_point lost_at) {
  const topo::PgClusterEntry* from = DcCluster(primary_dc_);
  const topo::PgClusterEntry* target = DcCluster(to);
  uint64_t last_seen;
  {
    std::lock_guard lock(dc_mu_);
    last_seen = dc_last_primary_lsn_;
  }
  DcLog("unplanned failover " + from->dc + " -> " + to + " (" + from->dc + " unreachable for " +
        std::to_string(Since(lost_at)) + " s)");
  uint64_t at = 0;
  for (const auto& e : target->nodes)
    if (MemberPg m = Probe(DcPool(e)); m.reachable) at = std::max(at, m.lsn);
  if (std::string err = PatchConfig(run_, *target, {{"standby_cluster", nullptr}}); !err.empty())
    return err;
  const topo::NodeEntry* leader = DcWaitWrites(*target, milliseconds(60'000));
  if (!leader) return to + " was promoted but took no write within 60 s";
  double rto = Since(lost_at);
  int64_t lost = last_seen > at ? static_cast<int64_t>(last_seen - at) : 0;
  {
    std::lock_guard lock(dc_mu_);
    primary_dc_ = to;
    dc_source_.erase(target->scope);
    dc_op_["rto_s"] = rto;
    dc_op_["lost_bytes"] = lost;
    dc_op_["new_primary"] = leader->name;
  }
  char buf[200];
  snprintf(buf, sizeof buf,
           "%s takes writes on %s: RTO %.2f s from the loss; promoted at %s, the old primary "
           "was last seen at %s (%lld bytes of WAL at most lost)",
           to.c_str(), leader->name.c_str(), rto, Lsn(at).c_str(), Lsn(last_seen).c_str(),
           static_cast<long long>(lost));
  DcLog(buf);
  // The new primary DC's cache nodes may hold values read from the lost primary (a reader that
  // met a recent write's marker reads the primary) that the promoted standby never had: flush.
  int flushed = 0;
  for (const auto& r : t_.redis) {
    if (r.dc != to) continue;
    auto hp = config::ParseHostPort(r.listen);
    auto reply = RedisCommand(hp.host, hp.port, {"FLUSHALL"}, milliseconds(2000),
                              {"admin", secrets::Get(run_, "redis_admin")});
    if (reply && !reply->is_error()) ++flushed;
  }
  if (flushed > 0) DcLog(to + ": " + std::to_string(flushed) + " cache nodes flushed");
  // The lost cluster must not take writes when it comes back: its configuration in etcd says
  // standby_cluster now, its initialize key goes (it bootstraps again as a standby), and its
  // members' data (possibly diverged) is removed before they next start.
  if (std::string err = FenceInEtcd(*from, *leader); !err.empty())
    DcLog("fencing " + from->scope + " in etcd failed: " + err);
  else
    DcLog(from->scope + " fenced in etcd: its members rebuild from " + to + " when they return");
  return "";
}

std::string Runner::FenceInEtcd(const topo::PgClusterEntry& lost, const topo::NodeEntry& source) {
  data::EtcdOptions eo;
  for (const auto& e : t_.runner.etcd) eo.endpoints.push_back(e.listen);
  eo.user = "patroni";
  eo.password = secrets::Get(run_, secrets::kEtcdPatroni);
  data::EtcdShardMapClient etcd(eo);
  const std::string prefix = "/service/" + lost.scope + "/";
  auto got = etcd.Post("kv/range",
                       json::serialize(json::object{{"key", data::EtcdBase64(prefix + "config")}}));
  if (!got.ok()) return got.error().message;
  json::object config;
  boost::system::error_code ec;
  auto v = json::parse(*got, ec);
  if (!ec && v.is_object())
    if (const auto* kvs = v.as_object().if_contains("kvs");
        kvs && kvs->is_array() && !kvs->as_array().empty()) {
      std::string text;
      const auto& kv = kvs->as_array().front().as_object();
      if (data::EtcdUnbase64(kv.at("value").as_string(), &text)) {
        auto c = json::parse(text, ec);
        if (!ec && c.is_object()) config = c.as_object();
      }
    }
  config["standby_cluster"] = StandbyConfig(source);
  auto put = etcd.Post("kv/put", json::serialize(json::object{
                                     {"key", data::EtcdBase64(prefix + "config")},
                                     {"value", data::EtcdBase64(json::serialize(config))}}));
  if (!put.ok()) return put.error().message;
  for (const char* key : {"initialize", "leader"}) {
    auto del = etcd.Post("kv/deleterange",
                         json::serialize(json::object{{"key", data::EtcdBase64(prefix + key)}}));
    if (!del.ok()) return del.error().message;
  }
  {
    std::lock_guard lock(dc_mu_);
    dc_source_[lost.scope] = source.name;
  }
  std::lock_guard lock(mu_);
  for (const auto& e : lost.nodes) rebuild_.insert(e.name);
  return "";
}

void Runner::DcRebuildIfFenced(Node& n) {
  {
    std::lock_guard lock(mu_);
    if (!rebuild_.erase(n.name)) return;
  }
  if (!n.extra) return;
  const auto& extra = static_cast<const patroni::Extra&>(*n.extra);
  std::error_code ec;
  std::filesystem::remove_all(extra.data_dir, ec);
  Event(n.name, "data removed: it rejoins as a standby of the primary DC (base backup)");
}

void Runner::DcLoop() {
  if (t_.dc_clusters.size() < 2) return;
  // Which cluster takes writes now: the one whose configuration has no standby_cluster (a
  // runner started again after a failover finds it so), else the topology's primary_dc.
  for (const auto& c : t_.dc_clusters)
    if (IsStandby(c) == 0) {
      std::lock_guard lock(dc_mu_);
      primary_dc_ = c.dc;
    }
  {
    std::lock_guard lock(dc_mu_);
    const topo::PgClusterEntry* p = DcCluster(primary_dc_);
    for (const auto& c : t_.dc_clusters)
      if (c.dc != primary_dc_ && !dc_source_.count(c.scope))
        dc_source_[c.scope] = p->nodes.front().name;
  }
  auto seen = Clock::now();
  for (uint64_t tick = 0; !g_stop; ++tick) {
    std::this_thread::sleep_for(milliseconds(250));
    std::string primary;
    bool busy;
    {
      std::lock_guard lock(dc_mu_);
      primary = primary_dc_;
      busy = dc_busy_;
    }
    const topo::PgClusterEntry* c = DcCluster(primary);
    bool up = false;
    const topo::NodeEntry* writer = nullptr;
    for (const auto& e : c->nodes)
      if (MemberPg m = Probe(DcPool(e)); m.reachable) {
        up = true;
        if (!m.recovery) {
          writer = &e;
          std::lock_guard lock(dc_mu_);
          dc_last_primary_lsn_ = m.lsn;
        }
      }
    // Every second: how far each standby cluster's leader is behind the primary (status).
    if (writer && tick % 4 == 0)
      for (const auto& other : t_.dc_clusters) {
        if (other.dc == primary) continue;
        int64_t lag = -1;
        uint64_t head;
        {
          std::lock_guard lock(dc_mu_);
          head = dc_last_primary_lsn_;
        }
        for (const auto& e : other.nodes)
          if (MemberPg m = Probe(DcPool(e)); m.reachable && m.recovery)
            lag = std::max<int64_t>(lag, head > m.lsn ? static_cast<int64_t>(head - m.lsn) : 0);
        std::lock_guard lock(dc_mu_);
        dc_lag_[other.scope] = lag;
      }
    // The primary moved within its DC (Patroni's own failover): every standby cluster streams
    // from the new one.
    if (writer && !busy)
      for (const auto& other : t_.dc_clusters) {
        if (other.dc == primary) continue;
        std::string was;
        {
          std::lock_guard lock(dc_mu_);
          was = dc_source_[other.scope];
        }
        if (was == writer->name) continue;
        if (PatchConfig(run_, other, {{"standby_cluster", StandbyConfig(*writer)}}).empty()) {
          DcLog(other.scope + " streams from " + writer->name + " now (was " + was + ")");
          std::lock_guard lock(dc_mu_);
          dc_source_[other.scope] = writer->name;
        }
      }
    for (const auto& lb : t_.lb)
      if (!up && lb.dc == primary && TcpOpen(lb.admin)) up = true;
    if (up || busy || t_.pg_dc_failover_after_ms == 0) {
      seen = Clock::now();
      continue;
    }
    if (Clock::now() - seen < milliseconds(t_.pg_dc_failover_after_ms)) continue;
    // The primary DC is lost: the first standby cluster that answers takes over.
    for (const auto& other : t_.dc_clusters) {
      if (other.dc == primary) continue;
      bool reachable = false;
      for (const auto& e : other.nodes) reachable = reachable || Probe(DcPool(e)).reachable;
      if (!reachable) continue;
      std::string err;
      {
        std::lock_guard lock(dc_mu_);
        dc_busy_ = true;
        dc_op_ = json::object{{"kind", "unplanned"},
                              {"from", primary},
                              {"to", other.dc},
                              {"state", "running"},
                              {"log", json::array{}}};
      }
      err = DcUnplanned(other.dc, seen);
      std::lock_guard lock(dc_mu_);
      dc_op_["state"] = err.empty() ? "done" : "failed";
      if (!err.empty()) dc_op_["error"] = err;
      dc_busy_ = false;
      break;
    }
    seen = Clock::now();
  }
}

}  // namespace millions::ctl::detail
