#include "ctl/runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/env.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/topology.h"
#include "ctl/admin_token.h"
#include "ctl/process.h"
#include "ctl/runner_internal.h"

namespace millions::ctl {
namespace detail {
namespace fs = std::filesystem;

volatile sig_atomic_t g_stop = 0;

// True when stdout is a regular file (a log): the admin token is never written there.
bool StdoutIsFile() {
  struct stat st {};
  return fstat(1, &st) == 0 && S_ISREG(st.st_mode);
}
void OnSignal(int) { g_stop = 1; }

void Runner::Event(const std::string& node, const std::string& msg) {
  log::Info(msg, {{"node_name", node}});
  std::lock_guard lock(mu_);
  events_.push_back({FormatRfc3339(Env::Default().WallMillis()), node + ": " + msg});
  if (events_.size() > 200) events_.pop_front();
}

std::vector<Node> Runner::Nodes(const std::string& kind) {
  std::vector<Node> out;
  std::lock_guard lock(mu_);
  for (auto& n : nodes_)
    if (n->role == kind) out.push_back(*n);
  return out;
}

Node* Runner::Find(const std::string& name) {
  for (auto& n : nodes_)
    if (n->name == name) return n.get();
  return nullptr;
}

const Recipe* Runner::RecipeOf(const std::string& kind) const {
  for (const auto& r : recipes_)
    if (kind == r->Kind()) return r.get();
  return nullptr;
}

void Runner::WriteEffectiveTopology() {
  std::ifstream in(source_);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // In namespaces, every node reads the addresses of its peers' hosts.
  if (net_.active) text = netns::RewriteText(net_, std::move(text));
  for (const auto& [recipe, e] : extra_) {
    text += "\n[[" + recipe->ScaleTable() + "]]\nname = \"" + e.name + "\"\ndc = \"" + e.dc +
            "\"\nlisten = \"" + e.listen + "\"\n";
    if (!e.host.empty()) text += "host = \"" + e.host + "\"\n";
    if (!e.tls_listen.empty()) text += "tls_listen = \"" + e.tls_listen + "\"\n";
  }
  std::ofstream(effective_) << text;
}

bool Runner::SetUpNetwork() {
  std::string mode = t_.network_mode, why;
  if (mode == "auto") {
    mode = netns::Supported(&why) ? "netns" : "loopback";
  } else if (mode == "netns" && !netns::Supported(&why)) {
    fprintf(stderr, "millions up: [network] mode = \"netns\" needs network namespaces: %s\n",
            why.c_str());
    return false;
  }
  if (mode == "loopback") {
    netns::Teardown(run_);  // what an earlier netns run of this run dir left
    printf("  network    loopback (the topology's 127.0.0.0/8 addresses)%s\n",
           why.empty() ? "" : (": no namespaces, " + why).c_str());
    fflush(stdout);
    return true;
  }
  try {
    auto net = netns::Setup(&t_, run_);
    if (!net.ok()) {
      fprintf(stderr, "millions up: %s\n", net.error().message.c_str());
      return false;
    }
    net_ = std::move(*net);
  } catch (const std::exception& e) {
    fprintf(stderr, "millions up: %s\n", e.what());
    return false;
  }
  printf("  network    netns: a namespace per node in %s (%s-*), clients in %s (%s)\n",
         net_.cidr.c_str(), net_.prefix.c_str(), net_.public_ns.c_str(), net_.client.c_str());
  fflush(stdout);
  return true;
}

void Runner::Build() {
  for (const auto& recipe : recipes_) {
    std::vector<topo::NodeEntry> entries = recipe->Entries(t_);
    for (const auto& [r, e] : extra_)
      if (r == recipe.get()) entries.push_back(e);
    for (const auto& e : entries) {
      if (Find(e.name)) continue;
      if (!topo::OnThisHost(t_, e)) {  // another host's (--host): probed, never started
        std::lock_guard lock(mu_);
        bool known = false;
        for (const Node& r : remote_) known = known || r.name == e.name;
        if (known) continue;
        Node r = NodeFor(e, !e.rest.empty() ? e.rest : !e.admin.empty() ? e.admin : e.listen);
        r.role = recipe->Kind();
        r.recipe = recipe.get();
        remote_.push_back(std::move(r));
        continue;
      }
      auto n = std::make_unique<Node>(recipe->Make(e, ctx_));
      n->netns = netns::NamespacePath(net_, e.name);
      n->role = recipe->Kind();
      n->recipe = recipe.get();
      std::lock_guard lock(mu_);
      nodes_.push_back(std::move(n));
    }
  }
}

// The outermost stage that faces clients (the balancer, else a web node).
std::string Runner::PublicUrl() const {
  for (auto it = recipes_.rbegin(); it != recipes_.rend(); ++it)
    if (std::string url = (*it)->PublicUrl(t_); !url.empty()) return url;
  return "";
}

bool Runner::Start(Node& n) {
  DcRebuildIfFenced(n);
  auto pid = StartProcess(n.spawn, n.netns);
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
    if (n.recipe->Ready(n, milliseconds(800))) {
      std::lock_guard lock(mu_);
      n.state = "running";
      return true;
    }
    std::this_thread::sleep_for(milliseconds(200));
  }
  return false;
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
  // Engines stop cleanly on SIGTERM (Patroni stops its PostgreSQL); web nodes drain.
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
  n.recipe->AfterStop(n);     // companions left behind (Patroni's PostgreSQL)
  {
    std::lock_guard lock(mu_);
    n.pid = 0;
    n.state = "stopped";
  }
  SaveNodes();
}

void Runner::Supervise() {
  int tick = 0;
  while (!g_stop) {
    std::this_thread::sleep_for(milliseconds(100));
    if (++tick % 10 == 0)
      for (const auto& r : recipes_) r->Tick(ctx_, *this);
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
      if (n->recipe->Ready(*n, milliseconds(300))) {
        std::lock_guard lock(mu_);
        if (n->state == "starting") n->state = "running";
      }
    }
  }
}

int Runner::Run() {
  autoscale_ = ReadAutoscale(t_);  // checked by `up` before it got here
  prometheus_ = ReadPrometheus(t_);
  run_ = Abs(t_.runner.run_dir);
  MakeDir(run_, EngineUser());
  MakeDir(run_ + "/logs", EngineUser());
  effective_ = run_ + "/topology.toml";
  // Our own binary, for web nodes and balancers (/proc/self/exe would name the child itself
  // after fork+exec, so it is resolved now).
  ctx_ = {&t_, run_, fs::read_symlink("/proc/self/exe").string(), effective_, EngineUser()};
  for (const auto& r : recipes_)
    if (Status st = r->Prepare(ctx_); !st.ok()) {
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
  primary_dc_ = t_.pg_primary_dc;
  if (!SetUpNetwork()) return 1;
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
    if (net_.active) netns::Teardown(run_);
    return 1;
  }
  std::ofstream(run_ + "/runner.json")
      << "{\"pid\":" << getpid() << ",\"admin\":\"" << t_.runner.admin << "\"}\n";
  std::thread remote([this] { RemoteLoop(); });  // the other hosts' nodes, for status
  auto t0 = Clock::now();
  bool ok = true;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = *nodes_[i];
    if (n.pid == 0 && n.recipe->StartTogether()) {
      // Healthy only together (etcd's quorum): start every node of the kind, then wait.
      for (auto& other : nodes_) {
        if (other->recipe != n.recipe || other->pid != 0) continue;
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
    // The last of its stage: the recipe's step before the next stage (patroni: the database).
    bool last = i + 1 == nodes_.size() || nodes_[i + 1]->recipe != n.recipe;
    if (last && !n.recipe->AfterReady(ctx_, *this).ok()) {
      ok = false;
      break;
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (ok) {
    printf("\n  millions is up (%.1f s)\n\n", secs);
    printf("  public     %s\n", PublicUrl().c_str());
    std::vector<std::pair<std::string, std::string>> lines;
    for (const auto& r : recipes_) r->Banner(t_, &lines);
    for (const auto& [label, text] : lines) printf("  %-10s %s\n", label.c_str(), text.c_str());
    // The token is printed here once (the URL's fragment never reaches a server or its logs),
    // never into a file: detached, stdout is run/runner.log (the caller's process prints it).
    if (detached_ || StdoutIsFile())
      printf("  dashboard  http://%s/   (admin token in %s)\n", t_.runner.admin.c_str(),
             AdminTokenPath(run_).c_str());
    else
      printf("  dashboard  http://%s/#token=%s\n", t_.runner.admin.c_str(), admin_token_.c_str());
    printf("  logs       %s/logs/\n", run_.c_str());
    printf("  status     build/millions status   (down: Ctrl-C or build/millions down)\n\n");
    fflush(stdout);
    std::thread watchdog([this] { WatchdogLoop(); });
    std::thread autoscaler([this] { AutoscaleLoop(); });
    std::thread dc([this] { DcLoop(); });
    Supervise();
    autoscale_stop_ = true;
    autoscaler.join();
    dc.join();
    watchdog.join();
  }
  remote_stop_ = true;
  remote.join();
  fprintf(stderr, "  stopping...\n");
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it)
    StopNode(**it, std::chrono::seconds(20));
  fs::remove(run_ + "/nodes.json");
  fs::remove(run_ + "/runner.json");
  if (net_.active && netns::Teardown(run_)) fprintf(stderr, "  network namespaces removed\n");
  admin_ioc_.stop();
  fprintf(stderr, "  stopped\n");
  return ok ? 0 : 1;
}

}  // namespace detail

using detail::Admin;
using detail::milliseconds;
using detail::Runner;

namespace {
// The last `lines` lines of a file ("" when it cannot be read), for an error message.
std::string TailOf(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(std::move(line));
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += l + "\n";
  return out;
}
}  // namespace

int Up(const UpFlags& flags) {
  topo::Topology t = topo::Topology::Load(flags.topology);
  if (!flags.host.empty()) topo::SelectHost(&t, flags.host);  // a ConfigError lists the hosts
  if (!t.hosts.empty()) {
    // Hosts are machines at the addresses written (their nodes are checked against them).
    if (t.network_mode == "netns")
      throw config::ConfigError(flags.topology +
                                ": a topology of [[host]] tables runs at its addresses as "
                                "written: [network] mode \"netns\" is for one machine's topology");
    t.network_mode = "loopback";  // "auto" too
  }
  for (const auto& r : MakeRecipes()) r->Check(t, flags.topology);
  log::Init("runner", "runner");
  for (const auto& w : topo::EtcdDcLossWarnings(t))
    fprintf(stderr, "millions up: warning: etcd: %s\n", w.c_str());
  if (std::string err = detail::PrepareHostSecrets(t, detail::Abs(t.runner.run_dir));
      !err.empty()) {
    fprintf(stderr, "millions up: %s\n", err.c_str());
    return 1;
  }
  if (!t.this_host.empty()) {
    int here = 0, all = 0;
    for (const auto& r : MakeRecipes())
      for (const auto& e : r->Entries(t)) {
        ++all;
        here += topo::OnThisHost(t, e) ? 1 : 0;
      }
    printf("  host       %s: %d of the topology's %d nodes\n", t.this_host.c_str(), here, all);
    if (topo::IsFirstHost(t) && t.hosts.size() > 1)
      printf("  secrets    %s/secrets: copy it to the other hosts before their `up`\n",
             detail::Abs(t.runner.run_dir).c_str());
    fflush(stdout);
  }
  // Made (or read) before a detached runner forks, so that the caller can print it.
  auto token = EnsureAdminToken(detail::Abs(t.runner.run_dir));
  if (!token.ok()) {
    fprintf(stderr, "millions up: %s\n", token.error().message.c_str());
    return 1;
  }
  if (flags.detach) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid > 0) {
      SelectCliHost(flags.host);  // its runner's admin listener, not the first host's
      // The parent waits until the runner answers and every node runs, then returns.
      for (int i = 0; i < 600; ++i) {
        std::this_thread::sleep_for(milliseconds(500));
        auto res = Admin(flags.topology, "GET", "/api/status");
        if (res.ok() && detail::AllLocalRunning(res->body)) {
          // Which network the runner chose (its log has the line).
          std::ifstream log(t.runner.run_dir + "/runner.log");
          std::string line, network;
          while (std::getline(log, line))
            if (line.rfind("  network    ", 0) == 0) network = line;
          if (!network.empty()) printf("%s\n", network.c_str() + 2);
          if (detail::StdoutIsFile())
            printf(
                "millions is up; dashboard http://%s/ (admin token in %s) ; `millions down` "
                "stops it\n",
                t.runner.admin.c_str(), AdminTokenPath(detail::Abs(t.runner.run_dir)).c_str());
          else
            printf("millions is up; dashboard http://%s/#token=%s ; `millions down` stops it\n",
                   t.runner.admin.c_str(), token->c_str());
          return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
          fprintf(stderr,
                  "millions up: the runner stopped before every node ran; %s/runner.log:\n%s",
                  t.runner.run_dir.c_str(), TailOf(t.runner.run_dir + "/runner.log", 20).c_str());
          return 1;
        }
      }
      fprintf(stderr, "millions up: not every node ran within 300 s; %s/runner.log:\n%s",
              t.runner.run_dir.c_str(), TailOf(t.runner.run_dir + "/runner.log", 20).c_str());
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
  Runner r(std::move(t), flags.topology, std::move(*token), flags.detach);
  return r.Run();
}

}  // namespace millions::ctl
