// The Patroni recipe (patroni.h): spawn and configuration, readiness, the application's
// database, status (the PostgreSQL row beside each Patroni) and the chaos parts.
#include "ctl/recipes/patroni.h"

#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "core/config.h"
#include "core/http_client.h"
#include "core/pg.h"
#include "ctl/recipes/recipes.h"
#include "ctl/secrets.h"

namespace millions::ctl {
namespace patroni {
namespace json = boost::json;

namespace {

const Extra& ExtraOf(const Node& n) { return static_cast<const Extra&>(*n.extra); }

// The credentials a member's configuration holds (secrets.h).
struct Credentials {
  std::string superuser, replication, etcd, rest;
};

Credentials ReadCredentials(const RecipeContext& ctx) {
  return {secrets::Get(ctx.run_dir, secrets::kPgSuperuser),
          secrets::Get(ctx.run_dir, secrets::kPgReplication),
          secrets::Get(ctx.run_dir, secrets::kEtcdPatroni),
          secrets::Get(ctx.run_dir, secrets::kPatroniRest)};
}

// The IP addresses of the topology's nodes and hosts outside 127.0.0.0/8 and 198.18.0.0/15 (which
// pg_hba admits whole), as /32 or /128 networks, each once; none when there are no hosts.
std::vector<std::string> HostAddresses(const topo::Topology& t) {
  std::set<std::string> ips;
  if (t.hosts.empty()) return {};
  auto add = [&](const std::string& host) {
    in_addr v4{};
    in6_addr v6{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
      uint32_t a = ntohl(v4.s_addr);
      if ((a >> 24) != 127 && (a >> 17) != (0xC612u >> 1)) ips.insert(host + "/32");
    } else if (inet_pton(AF_INET6, host.c_str(), &v6) == 1 && host != "::1") {
      ips.insert(host + "/128");
    }
  };
  for (const auto& h : t.hosts) add(h.address);
  for (const auto* nodes : {&t.web, &t.postgres, &t.worker, &t.runner.etcd, &t.lb, &t.redis,
                            &t.nats, &t.timeline, &t.edge, &t.dns})
    for (const auto& n : *nodes) add(config::ParseHostPort(n.listen).host);
  return {ips.begin(), ips.end()};
}

// The YAML lines (indented for bootstrap.dcs.standby_cluster) of the host and port of the
// member a standby cluster streams from: the primary DC's first member, which `up` starts first.
// One member, not libpq's lists: Patroni's passfile line would carry the list of ports, and match
// none. The runner points it at another member when the primary moves (runner_dc.cc).
std::string StandbyOf(const topo::PgClusterEntry& source) {
  auto hp = config::ParseHostPort(source.nodes.front().listen);
  return "      host: '" + hp.host + "'\n      port: " + std::to_string(hp.port) + "\n";
}

std::string Yaml(const topo::Topology& t, const topo::NodeEntry& n, const std::string& dir,
                 const Credentials& cred) {
  auto pg = config::ParseHostPort(n.listen);
  const auto& r = t.runner;
  // Each cluster is its own Patroni scope in the one etcd (docs/sharding.md).
  // Several DCs: each DC's members are a scope of their own (docs/datacentres.md).
  const topo::PgClusterEntry* c = topo::PatroniClusterOfNode(t, n.name);
  std::string s;
  s += "scope: " + (c ? c->scope : std::string("millions")) + "\nname: " + n.name + "\n";
  // Reads (health, /cluster) stay open for checks and the data layer; writes (switchover,
  // failover, restart, reinitialize, PATCH /config) need Basic authentication.
  s += "restapi:\n  listen: " + n.rest + "\n  connect_address: " + n.rest +
       "\n  authentication:\n    username: millions\n    password: '" + cred.rest + "'\n";
  std::string hosts;
  for (const auto& e : r.etcd) hosts += (hosts.empty() ? "" : ",") + e.listen;
  // etcd asks every client for a user (etcd.cc turns its authentication on).
  s += "etcd3:\n  hosts: " + hosts + "\n  username: patroni\n  password: '" + cred.etcd + "'\n";
  s += "bootstrap:\n  dcs:\n    ttl: " + std::to_string(r.patroni_ttl_s) +
       "\n    loop_wait: " + std::to_string(r.patroni_loop_wait_s) +
       "\n    retry_timeout: " + std::to_string(r.patroni_retry_timeout_s) +
       "\n    maximum_lag_on_failover: 1048576\n" +
       "    synchronous_mode: " + (r.patroni_synchronous_mode ? "true" : "false") +
       "\n    synchronous_mode_strict: " + (r.patroni_synchronous_mode_strict ? "true" : "false") +
       "\n    failsafe_mode: " + (r.patroni_failsafe_mode ? "true" : "false") +
       "\n    postgresql:\n      use_pg_rewind: true\n"
       "      parameters:\n        max_connections: 200\n        wal_log_hints: 'on'\n";
  // A standby cluster (another DC's): its standby leader streams from the primary DC's primary,
  // and it starts by a base backup from it. `millions dc failover` removes this from the dynamic
  // configuration to promote it.
  if (c && c->standby && !t.dc_clusters.empty())
    s += "    standby_cluster:\n" + StandbyOf(t.dc_clusters.front()) +
         "      create_replica_methods:\n      - basebackup\n";
  s += "  initdb:\n  - encoding: UTF8\n  - data-checksums\n";
  s += "postgresql:\n  listen: " + n.listen + "\n  connect_address: " + n.listen + "\n";
  s += "  data_dir: " + dir + "/data\n  bin_dir: /usr/lib/postgresql/15/bin\n";
  s += "  pgpass: " + dir + "/pgpass\n";
  // A replica's clone asks for an immediate checkpoint: a spread one (pg_basebackup's default)
  // kept a new member waiting 80 s on an idle primary.
  s += "  basebackup:\n  - checkpoint: 'fast'\n";
  // Patroni writes pg_hba.conf from this list at every start (an older run directory's `trust`
  // lines go too). Every connection proves a password with SCRAM, the unix socket included:
  // Patroni itself connects over TCP with its superuser's password, and nothing else uses the
  // socket, so no `trust` or `peer` line is needed. Loopback and 198.18.0.0/15 only: every
  // address in a local topology is on 127.0.0.0/8, and in namespaces ([network] mode netns,
  // ctl/netns.h) on the test range; anything else matches no line and is refused.
  s += "  pg_hba:\n  - local all all scram-sha-256\n"
       "  - host replication replicator 127.0.0.0/8 scram-sha-256\n"
       "  - host all all 127.0.0.0/8 scram-sha-256\n"
       "  - host replication replicator 198.18.0.0/15 scram-sha-256\n"
       "  - host all all 198.18.0.0/15 scram-sha-256\n";
  // Over several machines ([[host]] tables): every other address the topology's nodes and hosts
  // have, one host each (the other members replicate from there, web nodes and runners connect).
  for (const auto& a : HostAddresses(t))
    s += "  - host replication replicator " + a + " scram-sha-256\n  - host all all " + a +
         " scram-sha-256\n";
  // Hex secrets: plain YAML scalars, quoted anyway so they stay strings.
  s += "  authentication:\n    replication:\n      username: replicator\n      password: '" +
       cred.replication + "'\n    superuser:\n      username: postgres\n      password: '" +
       cred.superuser + "'\n";
  s += "  parameters:\n    unix_socket_directories: '" + dir +
       "'\n    port: " + std::to_string(pg.port) + "\n    password_encryption: scram-sha-256\n";
  return s;
}

// libpq conninfo for the runner's own sessions as the superuser (the password from the passfile).
std::string AdminConninfo(const RecipeContext& ctx, const topo::NodeEntry& e,
                          const std::string& db) {
  auto hp = config::ParseHostPort(e.listen);
  return "host=" + hp.host + " port=" + std::to_string(hp.port) + " dbname=" + db +
         " user=postgres passfile=" + secrets::Path(ctx.run_dir, secrets::kPgPassAll);
}

}  // namespace

pid_t Postmaster(const Node& n) {
  if (!n.extra) return 0;
  int64_t pm = 0;
  std::ifstream(ExtraOf(n).data_dir + "/postmaster.pid") >> pm;
  if (pm <= 0 || ProcessStartTicks(static_cast<pid_t>(pm)) == 0) return 0;
  return static_cast<pid_t>(pm);
}

// PostgreSQL's backends each start a session of their own (setsid), so a signal to the
// postmaster's group misses them: a killed primary's open backends could still commit for a few
// milliseconds. The postmaster is stopped first (it forks no backend while its children are
// listed), then every child gets the signal, then the postmaster.
bool SignalPostgres(const Node& n, int sig) {
  pid_t pm = Postmaster(n);
  if (pm <= 0) return false;
  if (sig != SIGCONT) kill(pm, SIGSTOP);
  for (pid_t child : ChildrenOf(pm)) kill(child, sig);
  pid_t group = getpgid(pm);
  if (group > 1) kill(-group, sig);
  kill(pm, sig);
  return true;
}

json::array Members(const std::vector<std::pair<std::string, int>>& rests, milliseconds timeout) {
  for (const auto& [host, port] : rests) {
    http::FetchRequest r;
    r.host = host;
    r.port = port;
    r.target = "/cluster";
    r.timeout = timeout;
    auto res = http::Fetch(r);
    if (!res.ok() || res->status != 200) continue;
    boost::system::error_code ec;
    auto v = json::parse(res->body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("members") || !v.at("members").is_array())
      continue;
    return v.at("members").as_array();
  }
  return {};
}

void PatroniRecipe::Check(const topo::Topology& t, const std::string& source) const {
  for (const auto& n : t.postgres)
    if (n.rest.empty())
      throw config::ConfigError(source + ": [[postgres.node]] '" + n.name +
                                "' needs rest = \"host:port\" for Patroni's REST API");
}

Node PatroniRecipe::Make(const topo::NodeEntry& e, const RecipeContext& ctx) const {
  Node n = NodeFor(e, e.rest);
  std::string dir = ctx.run_dir + "/" + e.name;
  MakeDir(dir, ctx.engine_user);
  auto extra = std::make_shared<Extra>();
  extra->data_dir = dir + "/data";
  const auto& clusters = ctx.topology->pg_clusters;
  for (size_t i = 0; i < clusters.size(); ++i)
    if (topo::FindNode(clusters[i].nodes, e.name)) {
      extra->cluster = clusters[i].name;
      extra->cluster_index = static_cast<int>(i);
    }
  const topo::PgClusterEntry* scope = topo::PatroniClusterOfNode(*ctx.topology, e.name);
  extra->scope = scope ? scope->scope : "millions";
  n.extra = std::move(extra);
  // Passwords inside: readable by the engine's user only.
  secrets::WriteFile(dir + "/patroni.yml", Yaml(*ctx.topology, e, dir, ReadCredentials(ctx)),
                     ctx.engine_user);
  n.spawn = {{"patroni", dir + "/patroni.yml"}, LogPath(ctx, e.name), ctx.engine_user, {}};
  return n;
}

bool PatroniRecipe::Ready(const Node& n, milliseconds timeout) const {
  return HttpReady(n.check_host, n.check_port, "/health", timeout);
}

namespace {
// Runs each statement in turn; the first error.
Status Run(pg::Conn& c, const std::vector<std::string>& sql) {
  for (const auto& q : sql)
    if (Status st = c.Simple(q.c_str()); !st.ok()) return st;
  return Ok();
}

// On the member that takes writes: the application's role (a login that is not a superuser,
// its password the run's), its database (owned by the superuser), and the database's public
// schema, which the application's role owns and its migrations create tables in. Run at every
// start: an older run directory's role and database are brought to this shape, and a rotated
// password (docs/credentials.md) takes effect.
Status CreateDatabase(const RecipeContext& ctx, const topo::PgClusterEntry& cluster) {
  const topo::Topology& t = *ctx.topology;
  const std::string app_password = secrets::Get(ctx.run_dir, secrets::kPgApp);
  std::string why;  // each member's refusal, for the error when none takes writes
  for (const auto& e : cluster.nodes) {
    pg::Options o;
    o.conninfo = AdminConninfo(ctx, e, "postgres") + " target_session_attrs=read-write";
    o.pool_size = 1;
    pg::Pool pool(o);
    auto c = pool.Acquire();
    if (!c.ok()) {
      why += "; " + e.name + " at " + e.listen + ": " + c.error().message;
      continue;
    }
    const std::string user = (*c)->QuoteIdentifier(t.pg_user);
    const std::string db = (*c)->QuoteIdentifier(t.pg_database);
    auto role = (*c)->Exec("r", "SELECT 1 FROM pg_roles WHERE rolname = $1", {pg::P(t.pg_user)});
    if (!role.ok()) return role.error();
    auto verifier = (*c)->EncryptPassword(t.pg_user, app_password);
    if (!verifier.ok()) return verifier.error();
    std::string attrs = " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD " +
                        (*c)->QuoteLiteral(*verifier);
    if (Status st = Run(**c, {(role->empty() ? "CREATE ROLE " : "ALTER ROLE ") + user + attrs});
        !st.ok())
      return st;
    auto exists =
        (*c)->Exec("d", "SELECT 1 FROM pg_database WHERE datname = $1", {pg::P(t.pg_database)});
    if (!exists.ok()) return exists.error();
    if (exists->empty())
      if (Status st = Run(**c, {"CREATE DATABASE " + db + " OWNER postgres"}); !st.ok()) return st;
    if (Status st = Run(**c, {"ALTER DATABASE " + db + " OWNER TO postgres",
                              "REVOKE ALL ON DATABASE " + db + " FROM PUBLIC",
                              "GRANT CONNECT, TEMPORARY ON DATABASE " + db + " TO " + user});
        !st.ok())
      return st;
    // The schema is the database's own: a session there.
    o.conninfo = AdminConninfo(ctx, e, t.pg_database) + " target_session_attrs=read-write";
    pg::Pool in_db(o);
    auto d = in_db.Acquire();
    if (!d.ok()) return d.error();
    return Run(**d,
               {"ALTER SCHEMA public OWNER TO " + user, "REVOKE ALL ON SCHEMA public FROM PUBLIC"});
  }
  return MakeError(Errc::kUnavailable, "no_primary",
                   "no PostgreSQL member" + (cluster.name.empty() ? "" : " of " + cluster.name) +
                       " accepts writes" + why);
}
}  // namespace

std::map<std::string, std::vector<Node>> ByCluster(const std::vector<Node>& nodes) {
  std::map<std::string, std::vector<Node>> out;
  for (const Node& n : nodes)
    if (n.extra) out[ExtraOf(n).scope].push_back(n);
  return out;
}

// The passfiles the runner, the web nodes and the workers read (secrets.h).
Status PatroniRecipe::Prepare(const RecipeContext& ctx) const {
  if (ctx.topology->postgres.empty()) return Ok();
  try {
    secrets::WritePgPassFiles(ctx.run_dir, ctx.topology->pg_user);
  } catch (const std::exception& e) {
    return MakeError(Errc::kInternal, "secrets", e.what());
  }
  return Ok();
}

// Every member is up: wait for each cluster's leader and create the application's database
// there; sharded, then the shard map and each cluster's schema and fence (shards.cc).
Status PatroniRecipe::AfterReady(const RecipeContext& ctx, RecipeHost& host) const {
  auto deadline = Clock::now() + std::chrono::seconds(60);
  for (const auto& cluster : ctx.topology->pg_clusters) {
    Status st = MakeError(Errc::kUnavailable, "no_primary", "waiting");
    while (!host.Stopping() && Clock::now() < deadline && !(st = CreateDatabase(ctx, cluster)).ok())
      std::this_thread::sleep_for(milliseconds(500));
    if (!st.ok()) {
      host.Event("postgres", "no primary: " + st.error().message);
      return st;
    }
  }
  if (ctx.topology->shards.enabled) return SetUpShards(ctx, host);
  return Ok();
}

// A Patroni that had to be killed leaves its PostgreSQL (a group of its own) running: stop it
// too, or it outlives `down` with its port and data directory taken.
void PatroniRecipe::AfterStop(const Node& n) const {
  if (pid_t pm = Postmaster(n); pm > 0) {
    kill(pm, SIGINT);  // PostgreSQL's fast shutdown
    for (int i = 0; i < 100 && Postmaster(n) > 0; ++i)
      std::this_thread::sleep_for(milliseconds(50));
    SignalPostgres(n, SIGKILL);
  }
}

Recipe::StatusWriter PatroniRecipe::StatusRows(const std::vector<Node>& nodes) const {
  // Patroni's view of the cluster (any member answers for all): timeline and lag per member.
  auto members = std::make_shared<std::map<std::string, json::object>>();
  // One question per cluster: each member answers for its own scope only.
  for (const auto& [cluster, of_cluster] : ByCluster(nodes)) {
    std::vector<std::pair<std::string, int>> rests;
    for (const Node& n : of_cluster)
      if (n.pid > 0) rests.emplace_back(n.check_host, n.check_port);
    for (const auto& m : Members(rests, milliseconds(500)))
      if (m.is_object() && m.as_object().contains("name"))
        (*members)[std::string(m.at("name").as_string())] = m.as_object();
  }
  return [members](const Node& n, json::object row, json::array* out) {
    // A Patroni node is shown at its REST API; its PostgreSQL, on the next row, at its own.
    row["address"] = n.check_host + ":" + std::to_string(n.check_port);
    std::string state(row["state"].as_string());
    out->push_back(std::move(row));
    // The PostgreSQL this Patroni manages: its postmaster pid and its role right now.
    int64_t pm = 0;
    std::ifstream pidf(ExtraOf(n).data_dir + "/postmaster.pid");
    pidf >> pm;
    if (pm > 0 && kill(static_cast<pid_t>(pm), 0) != 0) pm = 0;
    std::string db_role = "unknown";
    http::FetchRequest r;
    r.host = n.check_host;
    r.port = n.check_port;
    r.target = "/patroni";
    r.timeout = milliseconds(500);
    if (auto res = http::Fetch(r); res.ok() && res->status < 500) {
      boost::system::error_code ec;
      auto v = json::parse(res->body, ec);
      if (!ec && v.is_object() && v.as_object().contains("role")) {
        std::string role(v.as_object().at("role").as_string());
        // A standby cluster's leader is in recovery: a replica of another DC's primary.
        db_role = role == "replica"          ? "replica"
                  : role == "standby_leader" ? "standby_leader"
                                             : "primary";
      }
    }
    out->push_back(json::object{{"name", n.name + "-pg"},
                                {"role", "postgres"},
                                {"dc", n.dc},
                                {"address", n.address},
                                {"shard", ExtraOf(n).cluster_index},
                                {"db_role", db_role},
                                {"state", pm > 0 ? state : (state == "running" ? "failed" : state)},
                                {"pid", pm}});
    if (!ExtraOf(n).cluster.empty()) out->back().as_object()["cluster"] = ExtraOf(n).cluster;
    if (auto it = members->find(n.name); it != members->end()) {
      auto& o = out->back().as_object();
      if (it->second.contains("timeline")) o["timeline"] = it->second.at("timeline");
      if (it->second.contains("lag") && it->second.at("lag").is_number())
        o["lag_bytes"] = it->second.at("lag");
    }
  };
}

// The database's connection count, in every tier of the metrics summary.
void PatroniRecipe::TierFields(const RecipeContext& ctx, json::object* fields) const {
  const topo::Topology& t = *ctx.topology;
  int64_t db_conns = 0;
  for (const auto& e : t.postgres) {
    pg::Options o;
    o.conninfo = AdminConninfo(ctx, e, "postgres");
    o.pool_size = 1;
    o.connect_timeout_s = 1;
    pg::Pool pool(o);
    if (auto c = pool.Acquire(); c.ok()) {
      if (auto rows = (*c)->Exec("n", "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                                 {pg::P(t.pg_database)});
          rows.ok())
        db_conns += rows->Int(0, 0);
    }
  }
  (*fields)["db_connections"] = db_conns;
}

}  // namespace patroni

std::unique_ptr<Recipe> NewPatroniRecipe() { return std::make_unique<patroni::PatroniRecipe>(); }

}  // namespace millions::ctl
