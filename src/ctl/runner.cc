#include "ctl/runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "app/topology.h"
#include "cache/resp.h"
#include "core/env.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/pg.h"
#include "core/router.h"
#include "ctl/dashboard.h"
#include "ctl/process.h"

namespace millions::ctl {
namespace fs = std::filesystem;
namespace json = boost::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct Node {
  std::string name, role, dc, address;
  std::string check_host;  // readiness: GET http://check_host:check_port/check_path -> 200
  int check_port = 0;
  std::string check_path;
  Spawn spawn;
  pid_t pid = 0;
  std::string state = "stopped";  // starting | running | failed | stopped
  bool wanted = true;             // false once removed or while `down` runs
  bool paused = false;
  int failures = 0;
  Clock::time_point next_start{}, started_at{};
  Clock::time_point hold_until{};  // chaos kill --hold: no restart before this
  std::string pg_data_dir;         // patroni nodes
};

std::string Abs(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

// True when host:port can be bound for listening right now.
bool PortFree(const std::string& host, int port) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc);
  boost::system::error_code ec;
  boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address(host, ec),
                                    static_cast<uint16_t>(port));
  if (ec) return false;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  return !ec;
}

// One command to a Redis node on a blocking socket (the runner's threads may block), bounded by
// `timeout` per socket operation; the reply, or nothing.
std::optional<cache::RedisReply> RedisCommand(const std::string& host, int port,
                                              const std::vector<std::string>& argv,
                                              milliseconds timeout) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s(ioc);
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  s.open(boost::asio::ip::tcp::v4(), ec);
  if (ec) return std::nullopt;
  timeval tv{0, static_cast<suseconds_t>(timeout.count() * 1000)};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  s.connect({addr, static_cast<uint16_t>(port)}, ec);
  if (ec) return std::nullopt;
  std::string wire, in;
  cache::EncodeCommand(argv, &wire);
  boost::asio::write(s, boost::asio::buffer(wire), ec);
  cache::RespParser parser;
  while (!ec && in.size() < (1 << 20)) {
    cache::RedisReply r;
    size_t used = 0;
    auto st = parser.Parse(in, &r, &used);
    if (st == cache::RespParser::State::kReply) return r;
    if (st == cache::RespParser::State::kProtocolError) break;
    char buf[4096];
    size_t n = s.read_some(boost::asio::buffer(buf), ec);
    in.append(buf, n);
  }
  return std::nullopt;
}

// A Redis node is ready when it answers PING.
bool RedisReady(const std::string& host, int port, milliseconds timeout) {
  auto r = RedisCommand(host, port, {"PING"}, timeout);
  return r && r->str == "PONG";
}

// A cache node's memory, keys and evictions for status and the dashboard, from INFO.
void AddRedisInfo(const Node& n, json::object* o) {
  auto r = RedisCommand(n.check_host, n.check_port, {"INFO"}, milliseconds(300));
  if (!r || r->type != cache::RedisReply::Type::kString) return;
  auto field = [&](const char* name) -> int64_t {
    std::string key = std::string("\n") + name + ":";
    size_t at = r->str.find(key);
    return at == std::string::npos ? -1 : std::atoll(r->str.c_str() + at + key.size());
  };
  (*o)["used_memory_bytes"] = field("used_memory");
  (*o)["maxmemory_bytes"] = field("maxmemory");
  (*o)["evicted_keys"] = field("evicted_keys");
  (*o)["keyspace_hits"] = field("keyspace_hits");
  (*o)["keyspace_misses"] = field("keyspace_misses");
  size_t db0 = r->str.find("\ndb0:keys=");
  (*o)["keys"] = db0 == std::string::npos ? 0 : std::atoll(r->str.c_str() + db0 + 10);
}

bool Ready(const Node& n, milliseconds timeout = milliseconds(800)) {
  if (n.role == "redis") return RedisReady(n.check_host, n.check_port, timeout);
  http::FetchRequest r;
  r.host = n.check_host;
  r.port = n.check_port;
  r.target = n.check_path;
  r.timeout = timeout;
  auto res = http::Fetch(r);
  return res.ok() && res->status == 200;
}

// Patroni's /cluster members (any member answers for all), from the first that answers;
// empty when none does.
json::array PatroniMembers(const std::vector<std::pair<std::string, int>>& rests,
                           milliseconds timeout) {
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

std::string PatroniYaml(const app::Topology& t, const app::NodeEntry& n, const std::string& dir) {
  auto pg = config::ParseHostPort(n.listen);
  const auto& r = t.runner;
  std::string s;
  s += "scope: millions\nname: " + n.name + "\n";
  s += "restapi:\n  listen: " + n.rest + "\n  connect_address: " + n.rest + "\n";
  s += "etcd3:\n  hosts: " + r.etcd_listen + "\n";
  s += "bootstrap:\n  dcs:\n    ttl: " + std::to_string(r.patroni_ttl_s) +
       "\n    loop_wait: " + std::to_string(r.patroni_loop_wait_s) +
       "\n    retry_timeout: " + std::to_string(r.patroni_retry_timeout_s) +
       "\n    maximum_lag_on_failover: 1048576\n" +
       "    synchronous_mode: " + (r.patroni_synchronous_mode ? "true" : "false") +
       "\n    synchronous_mode_strict: " + (r.patroni_synchronous_mode_strict ? "true" : "false") +
       "\n    postgresql:\n      use_pg_rewind: true\n"
       "      parameters:\n        max_connections: 200\n        wal_log_hints: 'on'\n";
  s += "  initdb:\n  - encoding: UTF8\n  - data-checksums\n";
  // Loopback only: every address in a local topology is on 127.0.0.0/8.
  s += "  pg_hba:\n  - local all all trust\n  - host replication replicator 127.0.0.1/32 trust\n"
       "  - host all all 127.0.0.1/32 trust\n";
  s += "postgresql:\n  listen: " + n.listen + "\n  connect_address: " + n.listen + "\n";
  s += "  data_dir: " + dir + "/data\n  bin_dir: /usr/lib/postgresql/15/bin\n";
  s += "  pgpass: " + dir + "/pgpass\n";
  s += "  authentication:\n    replication:\n      username: replicator\n      password: "
       "replicator\n    superuser:\n      username: postgres\n      password: postgres\n";
  s += "  parameters:\n    unix_socket_directories: '" + dir +
       "'\n    port: " + std::to_string(pg.port) + "\n";
  return s;
}

class Runner {
 public:
  Runner(app::Topology t, std::string topology_path)
      : t_(std::move(t)), source_(std::move(topology_path)) {}

  int Run();

 private:
  void Build();
  void Event(const std::string& node, const std::string& msg);
  bool Start(Node& n);
  bool WaitReady(Node& n, milliseconds timeout);
  Status CreateDatabase();
  void Supervise();
  void StopNode(Node& n, milliseconds grace);
  std::string StatusJson();
  std::string MetricsJson();
  std::string PublicUrl() const;
  void ServeAdmin();
  // hold_ms (kill only): the supervisor leaves the node down this long, as a machine that
  // stays down would be (so that Patroni fails over instead of the old leader coming back).
  std::string Act(const std::string& node, const std::string& action, int hold_ms = 0);
  std::string ScaleWeb(int count);
  void WriteEffectiveTopology();
  Node* Find(const std::string& name);
  bool Root() const { return geteuid() == 0; }
  std::string EngineUser() const { return Root() ? t_.runner.engine_user : ""; }

  app::Topology t_;
  std::string source_;
  std::string run_;        // absolute run dir
  std::string effective_;  // run/topology.toml: the source plus nodes added at run time
  std::mutex mu_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::deque<std::pair<std::string, std::string>> events_;  // ts, text
  std::vector<app::NodeEntry> extra_web_;
  std::mutex scale_mu_;
  std::string leader_;  // Patroni's leader as last seen (Supervise's thread only)
  void WatchLeader();
  boost::asio::io_context admin_ioc_;
};

void Runner::Event(const std::string& node, const std::string& msg) {
  log::Info(msg, {{"node_name", node}});
  std::lock_guard lock(mu_);
  events_.push_back({FormatRfc3339(Env::Default().WallMillis()), node + ": " + msg});
  if (events_.size() > 200) events_.pop_front();
}

Node* Runner::Find(const std::string& name) {
  for (auto& n : nodes_)
    if (n->name == name) return n.get();
  return nullptr;
}

void Runner::WriteEffectiveTopology() {
  std::ifstream in(source_);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& e : extra_web_)
    text += "\n[[web.node]]\nname = \"" + e.name + "\"\ndc = \"" + e.dc + "\"\nlisten = \"" +
            e.listen + "\"\n";
  std::ofstream(effective_) << text;
}

// A node of `role` from its topology entry; readiness is checked at `check` (host:port) and
// `path` (empty: the role's own check, as for Redis).
std::unique_ptr<Node> NewNode(const app::NodeEntry& e, const char* role, const std::string& check,
                              const char* path) {
  auto n = std::make_unique<Node>();
  n->name = e.name;
  n->role = role;
  n->dc = e.dc;
  n->address = e.listen;
  auto hp = config::ParseHostPort(check);
  n->check_host = hp.host;
  n->check_port = hp.port;
  n->check_path = path;
  return n;
}

void Runner::Build() {
  const auto& r = t_.runner;
  std::string user = EngineUser();
  auto add = [this](std::unique_ptr<Node> n) {
    std::lock_guard lock(mu_);
    nodes_.push_back(std::move(n));
  };
  // Our own binary, for web nodes and balancers (/proc/self/exe would name the child itself
  // after fork+exec, so it is resolved now).
  std::string self = fs::read_symlink("/proc/self/exe").string();
  if (!Find("etcd")) {
    app::NodeEntry e{"etcd", t_.dcs.empty() ? "dc1" : t_.dcs.front(), r.etcd_listen, "", "", ""};
    auto n = NewNode(e, "etcd", r.etcd_listen, "/health");
    std::string dir = run_ + "/etcd";
    MakeDir(dir, user);
    n->spawn = {{"etcd", "--name", "etcd", "--data-dir", dir + "/data", "--listen-client-urls",
                 "http://" + r.etcd_listen, "--advertise-client-urls", "http://" + r.etcd_listen,
                 "--listen-peer-urls", "http://" + r.etcd_peer, "--initial-advertise-peer-urls",
                 "http://" + r.etcd_peer, "--initial-cluster", "etcd=http://" + r.etcd_peer},
                run_ + "/logs/etcd.log",
                user,
                {}};
    add(std::move(n));
  }
  for (const auto& e : t_.postgres) {
    if (Find(e.name)) continue;
    auto n = NewNode(e, "patroni", e.rest, "/health");
    std::string dir = run_ + "/" + e.name;
    MakeDir(dir, user);
    n->pg_data_dir = dir + "/data";
    std::ofstream(dir + "/patroni.yml") << PatroniYaml(t_, e, dir);
    n->spawn = {{"patroni", dir + "/patroni.yml"}, run_ + "/logs/" + e.name + ".log", user, {}};
    add(std::move(n));
  }
  for (const auto& e : t_.redis) {
    if (Find(e.name)) continue;
    auto n = NewNode(e, "redis", e.listen, "");
    std::string dir = run_ + "/" + e.name;
    MakeDir(dir, user);
    // A cache node: nothing on disk (a restarted node starts empty), bounded memory, and the
    // topology's eviction policy.
    n->spawn = {
        {"redis-server", "--port", std::to_string(n->check_port), "--bind", n->check_host, "--save",
         "", "--appendonly", "no", "--daemonize", "no", "--dir", dir, "--maxmemory",
         t_.redis_settings.maxmemory, "--maxmemory-policy", t_.redis_settings.eviction_policy},
        run_ + "/logs/" + e.name + ".log",
        user,
        {}};
    add(std::move(n));
  }
  std::vector<app::NodeEntry> web = t_.web;
  web.insert(web.end(), extra_web_.begin(), extra_web_.end());
  for (const auto& e : web) {
    if (Find(e.name)) continue;
    auto n = NewNode(e, "web", e.listen, "/readyz");
    n->spawn = {{self, "serve", "web", "--config", effective_, "--node", e.name},
                run_ + "/logs/" + e.name + ".log",
                "",
                {}};
    add(std::move(n));
  }
  for (const auto& e : t_.lb) {
    if (Find(e.name)) continue;
    auto n = NewNode(e, "lb", e.admin, "/readyz");
    n->spawn = {{self, "serve", "lb", "--config", effective_, "--node", e.name},
                run_ + "/logs/" + e.name + ".log",
                "",
                {"MILLIONS_RUNNER_ADMIN=" + t_.runner.admin}};
    add(std::move(n));
  }
}

std::string Runner::PublicUrl() const {
  if (!t_.lb.empty()) return "http://" + t_.lb.front().listen + "/";
  return t_.web.empty() ? "" : "http://" + t_.web.front().listen + "/";
}

bool Runner::Start(Node& n) {
  auto pid = StartProcess(n.spawn);
  if (!pid.ok()) {
    Event(n.name, "could not start: " + pid.error().message);
    return false;
  }
  std::lock_guard lock(mu_);
  n.pid = *pid;
  n.state = "starting";
  n.paused = false;
  n.started_at = Clock::now();
  return true;
}

bool Runner::WaitReady(Node& n, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline && !g_stop) {
    int status;
    if (waitpid(n.pid, &status, WNOHANG) == n.pid) {
      std::lock_guard lock(mu_);
      n.state = "failed";
      n.pid = 0;
      return false;
    }
    if (Ready(n)) {
      std::lock_guard lock(mu_);
      n.state = "running";
      return true;
    }
    std::this_thread::sleep_for(milliseconds(200));
  }
  return false;
}

Status Runner::CreateDatabase() {
  // Ask each member which one leads; create the role and database there once.
  for (const auto& e : t_.postgres) {
    auto hp = config::ParseHostPort(e.listen);
    pg::Options o;
    o.conninfo = "host=" + hp.host + " port=" + std::to_string(hp.port) +
                 " dbname=postgres user=postgres target_session_attrs=read-write";
    o.pool_size = 1;
    pg::Pool pool(o);
    auto c = pool.Acquire();
    if (!c.ok()) continue;
    auto role = (*c)->Exec("r", "SELECT 1 FROM pg_roles WHERE rolname = $1", {pg::P(t_.pg_user)});
    if (!role.ok()) return role.error();
    if (role->empty()) {
      std::string sql = "CREATE ROLE \"" + t_.pg_user + "\" LOGIN";
      if (Status s = (*c)->Simple(sql.c_str()); !s.ok()) return s;
    }
    auto db =
        (*c)->Exec("d", "SELECT 1 FROM pg_database WHERE datname = $1", {pg::P(t_.pg_database)});
    if (!db.ok()) return db.error();
    if (db->empty()) {
      std::string sql = "CREATE DATABASE \"" + t_.pg_database + "\" OWNER \"" + t_.pg_user + "\"";
      if (Status s = (*c)->Simple(sql.c_str()); !s.ok()) return s;
    }
    return Ok();
  }
  return MakeError(Errc::kUnavailable, "no_primary", "no PostgreSQL member accepts writes");
}

void Runner::StopNode(Node& n, milliseconds grace) {
  pid_t pid;
  {
    std::lock_guard lock(mu_);
    pid = n.pid;
    n.wanted = false;
  }
  if (pid <= 0) return;
  SignalGroup(pid, SIGCONT);
  // Patroni stops its PostgreSQL on SIGTERM; web nodes drain.
  kill(pid, SIGTERM);
  auto deadline = Clock::now() + grace;
  int status;
  while (Clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  if (waitpid(pid, &status, WNOHANG) == 0) {
    SignalGroup(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  SignalGroup(pid, SIGKILL);  // anything of the group that outlived its leader
  std::lock_guard lock(mu_);
  n.pid = 0;
  n.state = "stopped";
}

// A promotion is an event like a death: the dashboard shows it as it happens.
void Runner::WatchLeader() {
  std::vector<std::pair<std::string, int>> rests;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_)
      if (n->role == "patroni" && n->pid > 0) rests.emplace_back(n->check_host, n->check_port);
  }
  for (const auto& m : PatroniMembers(rests, milliseconds(300))) {
    if (!m.is_object() || !m.as_object().contains("role") || m.at("role") != "leader") continue;
    std::string now(m.at("name").as_string());
    if (now != leader_) {
      if (!leader_.empty()) Event(now, "promoted to primary (was " + leader_ + ")");
      leader_ = now;
    }
    return;
  }
  // No leader right now (failover under way): keep the last one.
}

void Runner::Supervise() {
  int tick = 0;
  while (!g_stop) {
    std::this_thread::sleep_for(milliseconds(100));
    if (++tick % 10 == 0) WatchLeader();
    std::vector<Node*> to_start;
    {
      std::lock_guard lock(mu_);
      for (auto& up : nodes_) {
        Node& n = *up;
        int status;
        if (n.pid > 0 && waitpid(n.pid, &status, WNOHANG) == n.pid) {
          n.pid = 0;
          if (!n.wanted) {
            n.state = "stopped";
            continue;
          }
          n.state = "failed";
          // Backoff doubles per failure, from 0.5 s to 30 s; a minute of health resets it.
          if (Clock::now() - n.started_at > std::chrono::seconds(60)) n.failures = 0;
          auto delay = milliseconds(std::min(30000, 500 << std::min(n.failures, 6)));
          n.failures++;
          n.next_start = std::max(Clock::now() + delay, n.hold_until);
          std::string why = WIFSIGNALED(status)
                                ? "killed by signal " + std::to_string(WTERMSIG(status))
                                : "exited with " + std::to_string(WEXITSTATUS(status));
          events_.push_back(
              {FormatRfc3339(Env::Default().WallMillis()),
               n.name + ": " + why + "; restart in " + std::to_string(delay.count()) + " ms"});
          log::Warn(
              "node died",
              {{"node_name", n.name}, {"why", why}, {"restart_in_ms", int64_t(delay.count())}});
        } else if (n.pid == 0 && n.wanted && n.state == "failed" && Clock::now() >= n.next_start) {
          to_start.push_back(&n);
        }
      }
    }
    for (Node* n : to_start) {
      if (Start(*n)) Event(n->name, "restarted, pid " + std::to_string(n->pid));
    }
    // Promote started nodes to running once ready (outside the lock: checks do I/O).
    std::vector<Node*> starting;
    {
      std::lock_guard lock(mu_);
      for (auto& up : nodes_)
        if (up->pid > 0 && up->state == "starting") starting.push_back(up.get());
    }
    for (Node* n : starting) {
      if (Ready(*n, milliseconds(300))) {
        std::lock_guard lock(mu_);
        if (n->state == "starting") n->state = "running";
      }
    }
  }
}

std::string Runner::StatusJson() {
  json::array arr;
  // Copies taken under the lock: asking Patroni below is I/O, and supervision must not wait.
  std::vector<Node> nodes;
  std::deque<std::pair<std::string, std::string>> events_copy;
  {
    std::lock_guard lock(mu_);
    for (auto& up : nodes_) nodes.push_back(*up);
    events_copy = events_;
  }
  // Patroni's view of the cluster (any member answers for all): timeline and lag per member.
  std::map<std::string, json::object> members;
  {
    std::vector<std::pair<std::string, int>> rests;
    for (Node& n : nodes)
      if (n.role == "patroni" && n.pid > 0) rests.emplace_back(n.check_host, n.check_port);
    for (const auto& m : PatroniMembers(rests, milliseconds(500)))
      if (m.is_object() && m.as_object().contains("name"))
        members[std::string(m.at("name").as_string())] = m.as_object();
  }
  for (Node& n : nodes) {
    if (!n.wanted && n.pid == 0 && n.role == "web" && n.state == "stopped") continue;
    std::string state = n.paused ? "stopped" : n.state;
    json::object o{
        {"name", n.name},
        {"role", n.role},
        {"dc", n.dc},
        {"address",
         n.role == "patroni" ? n.check_host + ":" + std::to_string(n.check_port) : n.address},
        {"state", state},
        {"pid", n.pid}};
    if (n.role == "redis" && n.pid > 0) AddRedisInfo(n, &o);
    arr.push_back(o);
    if (n.role == "patroni") {
      // The PostgreSQL this Patroni manages: its postmaster pid and its role right now.
      int64_t pm = 0;
      std::ifstream pidf(n.pg_data_dir + "/postmaster.pid");
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
          db_role = role == "replica" ? "replica" : "primary";
        }
      }
      arr.push_back(
          json::object{{"name", n.name + "-pg"},
                       {"role", "postgres"},
                       {"dc", n.dc},
                       {"address", n.address},
                       {"shard", 0},
                       {"db_role", db_role},
                       {"state", pm > 0 ? state : (state == "running" ? "failed" : state)},
                       {"pid", pm}});
      if (auto it = members.find(n.name); it != members.end()) {
        auto& o = arr.back().as_object();
        if (it->second.contains("timeline")) o["timeline"] = it->second.at("timeline");
        if (it->second.contains("lag") && it->second.at("lag").is_number())
          o["lag_bytes"] = it->second.at("lag");
      }
    }
  }
  json::array events;
  for (const auto& [ts, text] : events_copy)
    events.push_back(json::object{{"ts", ts}, {"text", text}});
  json::object root{{"nodes", std::move(arr)},
                    {"endpoints", json::object{{"public", PublicUrl()},
                                               {"dashboard", "http://" + t_.runner.admin + "/"}}},
                    {"events", std::move(events)}};
  return json::serialize(root);
}

// Scrapes every running web node's /metrics and sums them per tier: requests, 5xx, the latency
// histogram (the dashboard turns successive scrapes into rates and a p99), and the database's
// connection count.
std::string Runner::MetricsJson() {
  struct Tier {
    double requests = 0, errors = 0;
    std::map<double, double> buckets;
  };
  std::map<std::string, Tier> tiers;
  // The cache's effect, from the web nodes: reads served by L1 and by L2, reads that went to
  // the database after a miss, and every database read.
  double l1_hits = 0, l2_hits = 0, loads = 0, db_reads = 0;
  std::vector<std::pair<std::string, std::pair<std::string, int>>> targets;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_)
      if ((n->role == "web" || n->role == "lb") && n->pid > 0 && n->state == "running")
        targets.push_back({n->role, {n->check_host, n->check_port}});
  }
  for (const auto& [role, hp] : targets) {
    http::FetchRequest r;
    r.host = hp.first;
    r.port = hp.second;
    r.target = "/metrics";
    r.timeout = milliseconds(500);
    auto res = http::Fetch(r);
    if (!res.ok() || res->status != 200) continue;
    Tier& t = tiers[role];
    std::istringstream in(res->body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      size_t sp = line.rfind(' ');
      double v = std::atof(line.c_str() + sp + 1);
      if (line.rfind("millions_http_requests_total{", 0) == 0) {
        t.requests += v;
        if (line.find("code=\"5") != std::string::npos) t.errors += v;
      } else if (line.rfind("millions_http_request_duration_seconds_bucket{", 0) == 0) {
        size_t le = line.find("le=\"");
        std::string bound = line.substr(le + 4, line.find('"', le + 4) - le - 4);
        t.buckets[bound == "+Inf" ? 1e300 : std::atof(bound.c_str())] += v;
      } else if (line.rfind("millions_cache_requests_total{", 0) == 0 &&
                 line.find("result=\"hit\"") != std::string::npos) {
        (line.find("level=\"l1\"") != std::string::npos ? l1_hits : l2_hits) += v;
      } else if (line.rfind("millions_cache_loads_total{", 0) == 0) {
        loads += v;
      } else if (line.rfind("millions_db_queries_total{", 0) == 0 &&
                 line.find("kind=\"read\"") != std::string::npos) {
        db_reads += v;
      }
    }
  }
  int64_t db_conns = 0;
  for (const auto& e : t_.postgres) {
    auto hp = config::ParseHostPort(e.listen);
    pg::Options o;
    o.conninfo =
        "host=" + hp.host + " port=" + std::to_string(hp.port) + " dbname=postgres user=postgres";
    o.pool_size = 1;
    o.connect_timeout_s = 1;
    pg::Pool pool(o);
    if (auto c = pool.Acquire(); c.ok()) {
      if (auto rows = (*c)->Exec("n", "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                                 {pg::P(t_.pg_database)});
          rows.ok())
        db_conns += rows->Int(0, 0);
    }
  }
  json::object out;
  for (auto& [name, t] : tiers) {
    json::array b;
    for (auto& [le, c] : t.buckets)
      b.push_back(
          json::array{le > 1e299 ? json::value("+Inf") : json::value(std::to_string(le)), c});
    out[name] = json::object{{"requests", t.requests},
                             {"errors", t.errors},
                             {"buckets", b},
                             {"db_connections", db_conns}};
  }
  json::object cache{
      {"l1_hits", l1_hits}, {"l2_hits", l2_hits}, {"loads", loads}, {"db_reads", db_reads}};
  return json::serialize(json::object{{"tiers", out}, {"cache", cache}});
}

std::string Runner::Act(const std::string& name, const std::string& action, int hold_ms) {
  Node* n;
  pid_t pid;
  {
    std::lock_guard lock(mu_);
    n = Find(name);
    if (!n) return "no such node";
    pid = n->pid;
  }
  if (action == "restart") {
    if (pid > 0) SignalGroup(pid, SIGKILL);  // the supervisor restarts it
    Event(name, "restart requested");
    return "";
  }
  if (pid <= 0) return "node is not running";
  if (action == "kill") {
    {
      std::lock_guard lock(mu_);
      n->hold_until = Clock::now() + milliseconds(hold_ms);
    }
    SignalGroup(pid, SIGKILL);
    if (!n->pg_data_dir.empty()) {
      // Patroni's postmaster runs in a process group of its own: kill it and its backends too,
      // so that the old primary cannot take one more write (fencing).
      int64_t pm = 0;
      std::ifstream(n->pg_data_dir + "/postmaster.pid") >> pm;
      if (pm > 0) {
        pid_t group = getpgid(static_cast<pid_t>(pm));
        if (group > 1) kill(-group, SIGKILL);
        kill(static_cast<pid_t>(pm), SIGKILL);
      }
    }
    Event(name, "chaos: SIGKILL");
  } else if (action == "stop") {
    SignalGroup(pid, SIGSTOP);
    std::lock_guard lock(mu_);
    n->paused = true;
    events_.push_back({FormatRfc3339(Env::Default().WallMillis()), name + ": chaos: SIGSTOP"});
  } else if (action == "cont") {
    SignalGroup(pid, SIGCONT);
    std::lock_guard lock(mu_);
    n->paused = false;
    events_.push_back({FormatRfc3339(Env::Default().WallMillis()), name + ": chaos: SIGCONT"});
  } else {
    return "unknown action " + action;
  }
  return "";
}

std::string Runner::ScaleWeb(int count) {
  std::lock_guard serial(scale_mu_);  // one scaling at a time
  std::vector<Node*> web;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_)
      if (n->role == "web" && n->wanted) web.push_back(n.get());
  }
  if (count < 1 || count > 32) return "web nodes must be 1..32";
  while (static_cast<int>(web.size()) > count) {
    Node* last = web.back();
    web.pop_back();
    Event(last->name, "scaling down: draining");
    StopNode(*last, milliseconds(15000));
  }
  while (static_cast<int>(web.size()) < count) {
    // A node scaled away earlier comes back first, under its name and address.
    Node* back = nullptr;
    {
      std::lock_guard lock(mu_);
      for (auto& n : nodes_)
        if (n->role == "web" && !n->wanted && n->pid == 0) {
          back = n.get();
          back->wanted = true;
          back->failures = 0;
          break;
        }
    }
    if (back) {
      if (!Start(*back) || !WaitReady(*back, milliseconds(30000)))
        return "node " + back->name + " did not start";
      Event(back->name, "scaled up: running");
      web.push_back(back);
      continue;
    }
    // A new node: the first free port after the highest web address, same host. The port
    // must be free now: the next one up was often an ephemeral port of a client connection,
    // and the node failed to bind, again and again, with backoff.
    int idx = static_cast<int>(web.size()) + 1;
    std::string name = "web" + std::to_string(idx);
    while (Find(name)) name += "x";
    auto hp = config::ParseHostPort(web.empty() ? t_.web.front().listen : web.back()->address);
    int port = hp.port + 1;
    {
      std::lock_guard lock(mu_);
      for (auto& n : nodes_)
        if (n->role == "web") {
          auto other = config::ParseHostPort(n->address);
          if (other.host == hp.host) port = std::max(port, other.port + 1);
        }
    }
    while (port < 65535 && !PortFree(hp.host, port)) ++port;
    app::NodeEntry e{
        name, web.empty() ? "dc1" : web.back()->dc, hp.host + ":" + std::to_string(port), "", "",
        ""};
    extra_web_.push_back(e);
    WriteEffectiveTopology();
    Build();
    Node* n = Find(name);
    if (!Start(*n) || !WaitReady(*n, milliseconds(30000))) return "node " + name + " did not start";
    Event(name, "scaled up: running");
    web.push_back(n);
  }
  return "";
}

void Runner::ServeAdmin() {
  auto hp = config::ParseHostPort(t_.runner.admin);
  auto* router = new http::Router();
  using boost::asio::awaitable;
  router->Add("GET", "/", [](http::Request&) -> awaitable<http::Response> {
    http::Response r;
    r.body = std::string(DashboardHtml());
    r.set("Content-Type", "text/html; charset=utf-8");
    co_return r;
  });
  router->Add("GET", "/api/status", [this](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, StatusJson());
  });
  router->Add("GET", "/api/metrics", [this](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, MetricsJson());
  });
  router->Add("POST", "/api/nodes/{name}/{action}",
              [this](http::Request& req) -> awaitable<http::Response> {
                auto hold = req.query_param("hold_ms");
                int hold_ms = hold ? std::clamp(std::atoi(hold->c_str()), 0, 3'600'000) : 0;
                std::string err =
                    Act(std::string(req.param("name")), std::string(req.param("action")), hold_ms);
                if (!err.empty()) co_return http::JsonError(400, "bad_action", err);
                co_return http::Json(200, "{\"ok\":true}");
              });
  router->Add("POST", "/api/scale/web", [this](http::Request& req) -> awaitable<http::Response> {
    auto n = req.query_param("n");
    int count = n ? std::atoi(n->c_str()) : 0;
    std::string err = ScaleWeb(count);
    if (!err.empty()) co_return http::JsonError(400, "bad_scale", err);
    co_return http::Json(200, "{\"ok\":true}");
  });
  router->Add("POST", "/api/down", [](http::Request&) -> awaitable<http::Response> {
    g_stop = 1;
    co_return http::Json(202, "{\"stopping\":true}");
  });
  static metrics::Registry registry;
  http::ServerOptions so;
  so.host = hp.host;
  so.port = hp.port;
  so.role = "runner";
  auto* server = new http::HttpServer(
      admin_ioc_, so,
      [router](http::Request& req) -> awaitable<http::Response> {
        auto m = router->Find(req.method, req.path);
        if (m.outcome != http::Router::Outcome::kMatched)
          co_return http::JsonError(404, "not_found", "no such admin route");
        req.route = std::string(m.route);
        req.params = std::move(m.params);
        co_return co_await (*m.handler)(req);
      },
      &registry);
  server->Start();
  // Two threads: a scale-up blocks its handler while the new node starts.
  for (int i = 0; i < 2; ++i) std::thread([this] { admin_ioc_.run(); }).detach();
}

// A local topology names a certificate that may not exist yet: make a self-signed pair for
// local use (clients will need -k or the file as their CA).
Status EnsureCertificate(const std::string& cert, const std::string& key) {
  if (cert.empty() || (fs::exists(cert) && fs::exists(key))) return Ok();
  fs::create_directories(fs::path(cert).parent_path().empty() ? "." : fs::path(cert).parent_path());
  fs::create_directories(fs::path(key).parent_path().empty() ? "." : fs::path(key).parent_path());
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout '" +
      key + "' -out '" + cert + "' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return MakeError(Errc::kInternal, "openssl", "could not make a self-signed certificate");
  return Ok();
}

int Runner::Run() {
  run_ = Abs(t_.runner.run_dir);
  MakeDir(run_, EngineUser());
  MakeDir(run_ + "/logs", EngineUser());
  if (Status st = EnsureCertificate(t_.lb_settings.tls_cert, t_.lb_settings.tls_key); !st.ok()) {
    fprintf(stderr, "millions up: %s\n", st.error().message.c_str());
    return 1;
  }
  effective_ = run_ + "/topology.toml";
  WriteEffectiveTopology();
  Build();
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  try {
    ServeAdmin();
  } catch (const std::exception& e) {
    fprintf(stderr, "millions up: admin address %s: %s (is another `up` running?)\n",
            t_.runner.admin.c_str(), e.what());
    return 1;
  }
  std::ofstream(run_ + "/runner.json")
      << "{\"pid\":" << getpid() << ",\"admin\":\"" << t_.runner.admin << "\"}\n";
  auto t0 = Clock::now();
  bool ok = true;
  bool db_made = false;
  for (auto& up : nodes_) {
    Node& n = *up;
    if (n.role == "web" && !db_made) {
      // Every member is up; wait for a leader and create the application's database.
      auto deadline = Clock::now() + std::chrono::seconds(60);
      Status st = MakeError(Errc::kUnavailable, "no_primary", "waiting");
      while (!g_stop && Clock::now() < deadline && !(st = CreateDatabase()).ok())
        std::this_thread::sleep_for(milliseconds(500));
      if (!st.ok()) {
        Event("postgres", "no primary: " + st.error().message);
        ok = false;
        break;
      }
      db_made = true;
    }
    fprintf(stderr, "  starting %-8s %-10s %s\n", n.role.c_str(), n.name.c_str(),
            n.address.c_str());
    if (!Start(n) || !WaitReady(n, std::chrono::seconds(90))) {
      Event(n.name, "did not become ready; see " + n.spawn.log_path);
      ok = false;
      break;
    }
    Event(n.name, "running, pid " + std::to_string(n.pid));
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (ok) {
    printf("\n  millions is up (%.1f s)\n\n", secs);
    printf("  public     %s\n", PublicUrl().c_str());
    if (!t_.lb.empty() && !t_.lb.front().tls_listen.empty())
      printf("  https      https://%s/  (self-signed: %s)\n", t_.lb.front().tls_listen.c_str(),
             t_.lb_settings.tls_cert.c_str());
    printf("  dashboard  http://%s/\n", t_.runner.admin.c_str());
    printf("  logs       %s/logs/\n", run_.c_str());
    printf("  status     build/millions status   (down: Ctrl-C or build/millions down)\n\n");
    fflush(stdout);
    Supervise();
  }
  fprintf(stderr, "  stopping...\n");
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it)
    StopNode(**it, std::chrono::seconds(20));
  fs::remove(run_ + "/runner.json");
  admin_ioc_.stop();
  fprintf(stderr, "  stopped\n");
  return ok ? 0 : 1;
}

// --- the CLI side: commands that talk to a running runner's admin API.

Result<http::Response> Admin(const std::string& topology, const std::string& method,
                             const std::string& target) {
  std::string admin = "127.0.0.1:7070";
  try {
    admin = app::Topology::Load(topology).runner.admin;
  } catch (const config::ConfigError&) {
    throw;
  }
  auto hp = config::ParseHostPort(admin);
  http::FetchRequest r;
  r.method = method;
  r.host = hp.host;
  r.port = hp.port;
  r.target = target;
  r.timeout = std::chrono::seconds(60);
  auto res = http::Fetch(r);
  if (!res.ok())
    return MakeError(Errc::kUnavailable, "not_running",
                     "no runner answers on " + admin + " (is `millions up` running?)");
  return res;
}

}  // namespace

int Up(const UpFlags& flags) {
  app::Topology t = app::Topology::Load(flags.topology);
  for (const auto& n : t.postgres)
    if (n.rest.empty())
      throw config::ConfigError(flags.topology + ": [[postgres.node]] '" + n.name +
                                "' needs rest = \"host:port\" for Patroni's REST API");
  log::Init("runner", "runner");
  if (flags.detach) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid > 0) {
      // The parent waits until the runner answers and every node runs, then returns.
      for (int i = 0; i < 600; ++i) {
        std::this_thread::sleep_for(milliseconds(500));
        auto res = Admin(flags.topology, "GET", "/api/status");
        if (res.ok() && res->body.find("\"starting\"") == std::string::npos &&
            res->body.find("\"stopped\"") == std::string::npos) {
          printf("millions is up; dashboard http://%s/ ; `millions down` stops it\n",
                 t.runner.admin.c_str());
          return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) return 1;
      }
      return 1;
    }
    setsid();
    // Detached: nothing may hold the caller's terminal or pipes open.
    std::filesystem::create_directories(t.runner.run_dir);
    int log = open((t.runner.run_dir + "/runner.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDONLY);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
      close(log);
    }
    if (null >= 0) {
      dup2(null, 0);
      close(null);
    }
  }
  Runner r(std::move(t), flags.topology);
  return r.Run();
}

int PrintStatus(const std::string& topology, bool as_json) {
  auto res = Admin(topology, "GET", "/api/status");
  if (!res.ok()) {
    fprintf(stderr, "millions: %s\n", res.error().message.c_str());
    return 1;
  }
  if (as_json) {
    printf("%s\n", res->body.c_str());
    return 0;
  }
  auto v = json::parse(res->body).as_object();
  printf("%-10s %-8s %-5s %-22s %-9s %s\n", "NAME", "ROLE", "DC", "ADDRESS", "STATE", "PID");
  for (const auto& n : v["nodes"].as_array()) {
    const auto& o = n.as_object();
    std::string role(o.at("role").as_string());
    if (o.contains("db_role")) role += "/" + std::string(o.at("db_role").as_string());
    printf("%-10s %-8s %-5s %-22s %-9s %lld\n", std::string(o.at("name").as_string()).c_str(),
           role.c_str(), std::string(o.at("dc").as_string()).c_str(),
           std::string(o.at("address").as_string()).c_str(),
           std::string(o.at("state").as_string()).c_str(),
           static_cast<long long>(o.at("pid").to_number<int64_t>()));
  }
  return 0;
}

int Down(const std::string& topology) {
  auto res = Admin(topology, "POST", "/api/down");
  if (!res.ok()) {
    fprintf(stderr, "millions: %s\n", res.error().message.c_str());
    return 1;
  }
  // Wait for the runner to finish stopping everything (its admin API goes away last).
  for (int i = 0; i < 240; ++i) {
    std::this_thread::sleep_for(milliseconds(250));
    if (!Admin(topology, "GET", "/api/status").ok()) {
      printf("stopped\n");
      return 0;
    }
  }
  fprintf(stderr, "millions: the runner is still stopping\n");
  return 1;
}

int Chaos(const std::string& topology, const std::string& action, const std::string& node,
          double hold_s) {
  std::string target = "/api/nodes/" + node + "/" + action;
  if (hold_s > 0) target += "?hold_ms=" + std::to_string(static_cast<int>(hold_s * 1000));
  auto res = Admin(topology, "POST", target);
  if (!res.ok() || res->status != 200) {
    fprintf(stderr, "millions: %s\n", res.ok() ? res->body.c_str() : res.error().message.c_str());
    return 1;
  }
  printf("%s %s\n", action.c_str(), node.c_str());
  return 0;
}

int Scale(const std::string& topology, const std::string& role, int count) {
  auto res = Admin(topology, "POST", "/api/scale/" + role + "?n=" + std::to_string(count));
  if (!res.ok() || res->status != 200) {
    fprintf(stderr, "millions: %s\n", res.ok() ? res->body.c_str() : res.error().message.c_str());
    return 1;
  }
  printf("%s nodes: %d\n", role.c_str(), count);
  return 0;
}

}  // namespace millions::ctl
