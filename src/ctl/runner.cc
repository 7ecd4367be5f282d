#include "ctl/runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/env.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/pg.h"
#include "core/topology.h"
#include "ctl/process.h"
#include "ctl/runner_internal.h"
#include "roles/lb/settings.h"

namespace millions::ctl {
namespace detail {
namespace fs = std::filesystem;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

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
std::unique_ptr<Node> NewNode(const topo::NodeEntry& e, const char* role, const std::string& check,
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
  // etcd's members form one cluster: each knows every peer from the start.
  std::string initial_cluster;
  for (const auto& e : r.etcd)
    initial_cluster += (initial_cluster.empty() ? "" : ",") + e.name + "=http://" + e.peer;
  for (const auto& e : r.etcd) {
    if (Find(e.name)) continue;
    auto n = NewNode(e, "etcd", e.listen, "/health");
    std::string dir = run_ + "/" + e.name;
    MakeDir(dir, user);
    n->spawn = {{"etcd", "--name", e.name, "--data-dir", dir + "/data", "--listen-client-urls",
                 "http://" + e.listen, "--advertise-client-urls", "http://" + e.listen,
                 "--listen-peer-urls", "http://" + e.peer, "--initial-advertise-peer-urls",
                 "http://" + e.peer, "--initial-cluster", initial_cluster,
                 "--initial-cluster-state", "new", "--initial-cluster-token", "millions"},
                run_ + "/logs/" + e.name + ".log",
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
  std::vector<topo::NodeEntry> web = t_.web;
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
  {
    std::lock_guard lock(mu_);
    n.pid = *pid;
    n.adopted = false;
    n.start_ticks = ProcessStartTicks(*pid);
    n.state = "starting";
    n.paused = false;
    n.started_at = Clock::now();
  }
  SaveNodes();
  return true;
}

bool Runner::WaitReady(Node& n, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline && !g_stop) {
    int status;
    if (Ended(n.pid, !n.adopted, n.start_ticks, &status)) {
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
  bool child;
  uint64_t start;
  {
    std::lock_guard lock(mu_);
    pid = n.pid;
    child = !n.adopted;
    start = n.start_ticks;
    n.wanted = false;
  }
  if (pid <= 0) return;
  SignalGroup(pid, SIGCONT);
  // Patroni stops its PostgreSQL on SIGTERM; web nodes drain.
  kill(pid, SIGTERM);
  auto deadline = Clock::now() + grace;
  int status;
  bool ended = false;
  while (!(ended = Ended(pid, child, start, &status)) && Clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(50));
  if (!ended) {
    SignalGroup(pid, SIGKILL);
    while (!Ended(pid, child, start, &status) && Clock::now() < deadline + grace)
      std::this_thread::sleep_for(milliseconds(20));
  }
  SignalGroup(pid, SIGKILL);  // anything of the group that outlived its leader
  // A Patroni that had to be killed leaves its PostgreSQL (a group of its own) running: stop it
  // too, or it outlives `down` with its port and data directory taken.
  if (pid_t pm = Postmaster(n); pm > 0) {
    kill(pm, SIGINT);  // PostgreSQL's fast shutdown
    for (int i = 0; i < 100 && Postmaster(n) > 0; ++i)
      std::this_thread::sleep_for(milliseconds(50));
    SignalPostgres(n, SIGKILL);
  }
  {
    std::lock_guard lock(mu_);
    n.pid = 0;
    n.state = "stopped";
  }
  SaveNodes();
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
    std::string was;
    {
      std::lock_guard lock(mu_);
      was = leader_;
      leader_ = now;
    }
    if (now != was && !was.empty()) Event(now, "promoted to primary (was " + was + ")");
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
        if (n.pid > 0 && Ended(n.pid, !n.adopted, n.start_ticks, &status)) {
          bool was_adopted = n.adopted;
          n.pid = 0;
          n.adopted = false;
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
          std::string why = was_adopted ? "ended (adopted: its exit status went elsewhere)"
                            : WIFSIGNALED(status)
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
    SaveNodes();
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
  const lb::Settings lbs = lb::ReadSettings(t_);  // checked by `up` before the runner starts
  if (Status st = EnsureCertificate(lbs.tls_cert, lbs.tls_key); !st.ok()) {
    fprintf(stderr, "millions up: %s\n", st.error().message.c_str());
    return 1;
  }
  {
    // A runner that still runs owns this run dir (its nodes are not ours to adopt).
    int64_t other = 0;
    std::ifstream in(run_ + "/runner.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (auto at = text.find("\"pid\":"); at != std::string::npos)
      other = std::strtoll(text.c_str() + at + 6, nullptr, 10);
    std::ifstream cmd("/proc/" + std::to_string(other) + "/cmdline");
    std::string argv((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    if (other > 0 && other != getpid() && ProcessStartTicks(static_cast<pid_t>(other)) != 0 &&
        argv.find("up") != std::string::npos) {
      fprintf(stderr, "millions up: another `millions up` (pid %lld) runs %s\n",
              static_cast<long long>(other), run_.c_str());
      return 1;
    }
  }
  effective_ = run_ + "/topology.toml";
  RestoreScaledNodes();
  WriteEffectiveTopology();
  Build();
  AdoptNodes();
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
    if (n.role == "etcd" && n.pid == 0) {
      // etcd's members are healthy only together (a quorum): start them all, then wait.
      for (auto& other : nodes_) {
        if (other->role != "etcd" || other->pid != 0) continue;
        fprintf(stderr, "  starting %-8s %-10s %s\n", other->role.c_str(), other->name.c_str(),
                other->address.c_str());
        if (!Start(*other)) ok = false;
      }
      if (!ok) break;
    } else if (n.pid == 0) {
      fprintf(stderr, "  starting %-8s %-10s %s\n", n.role.c_str(), n.name.c_str(),
              n.address.c_str());
      if (!Start(n)) ok = false;
    }
    if (!ok || !WaitReady(n, std::chrono::seconds(90))) {
      Event(n.name, "did not become ready; see " + n.spawn.log_path);
      ok = false;
      break;
    }
    Event(n.name, (n.adopted ? "adopted, pid " : "running, pid ") + std::to_string(n.pid));
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (ok) {
    printf("\n  millions is up (%.1f s)\n\n", secs);
    printf("  public     %s\n", PublicUrl().c_str());
    if (!t_.lb.empty() && !t_.lb.front().tls_listen.empty())
      printf("  https      https://%s/  (self-signed: %s)\n", t_.lb.front().tls_listen.c_str(),
             lb::ReadSettings(t_).tls_cert.c_str());
    printf("  dashboard  http://%s/\n", t_.runner.admin.c_str());
    printf("  logs       %s/logs/\n", run_.c_str());
    printf("  status     build/millions status   (down: Ctrl-C or build/millions down)\n\n");
    fflush(stdout);
    std::thread fence([this] { FenceLoop(); });
    Supervise();
    fence.join();
  }
  fprintf(stderr, "  stopping...\n");
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it)
    StopNode(**it, std::chrono::seconds(20));
  fs::remove(run_ + "/nodes.json");
  fs::remove(run_ + "/runner.json");
  admin_ioc_.stop();
  fprintf(stderr, "  stopped\n");
  return ok ? 0 : 1;
}

}  // namespace detail

using detail::Admin;
using detail::milliseconds;
using detail::Runner;

int Up(const UpFlags& flags) {
  topo::Topology t = topo::Topology::Load(flags.topology);
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

}  // namespace millions::ctl
