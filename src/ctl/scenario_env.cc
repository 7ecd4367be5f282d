#include "ctl/scenario_env.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/algorithm/string/predicate.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "core/http_client.h"

extern char** environ;

namespace millions::ctl {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::atomic<int> g_signal{0};

void OnSignal(int sig) { g_signal.store(sig); }

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& path, size_t n = 1500) {
  std::string s = ReadFile(path);
  return s.size() > n ? s.substr(s.size() - n) : s;
}

// Runs argv from `cwd` with stdout and stderr appended to `log`, at most `timeout_s` seconds
// (then SIGTERM, and SIGKILL 10 s later). `interruptible`: SIGINT/SIGTERM to us end it too.
// Returns its exit status, 128+signal when signalled, -1 when it could not start.
// `tick`, when set, is called about every 50 ms while the child runs.
pid_t SpawnChild(const std::vector<std::string>& args, const std::string& cwd,
                 const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// Waits for `pid` up to timeout_s, then SIGTERM (and SIGKILL 10 s later); its exit status.
int WaitChild(pid_t pid, int timeout_s, bool interruptible,
              const std::function<void()>& tick = {}) {
  auto start = std::chrono::steady_clock::now();
  bool termed = false;
  std::chrono::steady_clock::time_point termed_at;
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    auto now = std::chrono::steady_clock::now();
    bool over = now - start > std::chrono::seconds(timeout_s);
    if (!termed && (over || (interruptible && g_signal.load() != 0))) {
      kill(pid, SIGTERM);
      termed = true;
      termed_at = now;
    }
    if (termed && now - termed_at > std::chrono::seconds(10)) kill(pid, SIGKILL);
    if (tick && !termed) tick();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

int RunChild(const std::vector<std::string>& args, const std::string& cwd, const std::string& log,
             int timeout_s, bool interruptible, const std::function<void()>& tick = {}) {
  pid_t pid = SpawnChild(args, cwd, log);
  if (pid <= 0) return -1;
  return WaitChild(pid, timeout_s, interruptible, tick);
}

}  // namespace

void InstallScenarioSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool ScenarioInterrupted() { return g_signal.load() != 0; }

ScenarioEnv::ScenarioEnv(std::string work_dir, std::string binary, bool short_form)
    : dir_(std::move(work_dir)), bin_(std::move(binary)), short_(short_form) {
  fs::create_directories(dir_);
  // PostgreSQL and the other engines run as another user when we are root: they must reach
  // their directories under ours.
  chmod(dir_.c_str(), 0755);
}

ScenarioEnv::~ScenarioEnv() {
  try {
    for (pid_t p : background_) WaitChild(p, 0, false);
    StopSingle();
    Down();
  } catch (...) {
  }
}

void ScenarioEnv::Check() const {
  if (ScenarioInterrupted()) throw Interrupted();
}

void ScenarioEnv::Say(const std::string& line) const { fprintf(stderr, "  %s\n", line.c_str()); }

int ScenarioEnv::FreePort() {
  // The kernel's choice of a free port, never one given before in this process.
  static std::set<int> given;
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    close(fd);
    if (port == 0) throw std::runtime_error("no free loopback port");
    if (given.insert(port).second) return port;
  }
}

int ScenarioEnv::Millions(const std::vector<std::string>& args, int timeout_s,
                          const std::string& log, const std::function<void()>& tick) {
  std::vector<std::string> argv{bin_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunChild(argv, dir_, dir_ + "/" + log, timeout_s, true, tick);
}

std::string ScenarioEnv::StartSingle() {
  Check();
  int port = FreePort();
  std::string data = dir_ + "/single-" + std::to_string(++seq_);
  std::string log = dir_ + "/single.log";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addchdir_np(&fa, dir_.c_str());
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<std::string> args{bin_, "single", "--port", std::to_string(port), "--data", data};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int rc = posix_spawn(&single_pid_, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("could not start millions single");
  for (int i = 0; i < 300; ++i) {  // ready within 30 s
    Check();
    http::FetchRequest r;
    r.port = port;
    r.target = "/readyz";
    r.timeout = std::chrono::milliseconds(500);
    auto res = http::Fetch(r);
    if (res.ok() && res->status == 200) return "http://127.0.0.1:" + std::to_string(port);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("millions single not ready in 30 s: " + Tail(log));
}

void ScenarioEnv::StopSingle() {
  if (single_pid_ <= 0) return;
  kill(single_pid_, SIGTERM);
  for (int i = 0; i < 300; ++i) {
    if (waitpid(single_pid_, nullptr, WNOHANG) == single_pid_) break;
    if (i == 299) kill(single_pid_, SIGKILL), waitpid(single_pid_, nullptr, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  single_pid_ = 0;
}

std::string ScenarioEnv::Up(const std::string& label, const TopoSpec& spec) {
  Check();
  Down();
  std::string sub = dir_ + "/" + label;
  fs::create_directories(sub);
  chmod(sub.c_str(), 0755);
  std::string text = TopologyText(spec);
  // The run directory of this topology: sub/run (TopologyText wrote "RUN" for it).
  for (size_t p; (p = text.find("@RUN@")) != std::string::npos;) text.replace(p, 5, sub + "/run");
  std::string topo = sub + "/topology.toml";
  std::ofstream(topo) << text;
  run_topology_ = topo;
  Say("up " + label + " (" + topo + ")");
  int rc = Millions({"up", topo, "--detach"}, 300, label + "/up.log");
  if (rc != 0) {
    std::string tail = Tail(sub + "/up.log") + Tail(sub + "/run/runner.log");
    throw std::runtime_error("millions up " + label + " failed (exit " + std::to_string(rc) +
                             "):\n" + tail);
  }
  auto st = Status();
  if (auto* ep = st.if_contains("endpoints"))
    if (auto* pub = ep->as_object().if_contains("public")) return std::string(pub->as_string());
  throw std::runtime_error("millions status names no public URL");
}

void ScenarioEnv::Down() {
  if (run_topology_.empty()) return;
  std::string topo = run_topology_;
  run_topology_.clear();
  Say("down");
  if (RunChild({bin_, "down", "--topology", topo}, dir_, dir_ + "/down.log", 180, false) == 0)
    return;
  // `down` failed (the runner's admin API did not answer): SIGTERM to the runner itself, which
  // stops its nodes in reverse order as on Ctrl-C.
  std::string run = fs::path(topo).parent_path().string() + "/run/runner.json";
  boost::system::error_code ec;
  json::value v = json::parse(ReadFile(run), ec);
  const json::value* pid = !ec && v.is_object() ? v.get_object().if_contains("pid") : nullptr;
  if (!pid || !pid->is_int64() || pid->get_int64() <= 1) return;
  pid_t p = static_cast<pid_t>(pid->get_int64());
  Say("down failed; stopping the runner, pid " + std::to_string(p));
  kill(p, SIGTERM);
  for (int i = 0; i < 1200 && kill(p, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

json::object ScenarioEnv::Status() {
  std::string out = dir_ + "/status.json";
  fs::remove(out);
  // stdout only: the JSON; stderr to the log.
  std::vector<std::string> argv{"/bin/sh", "-c",
                                "'" + bin_ + "' status --json --topology '" + run_topology_ +
                                    "' >'" + out + "' 2>>'" + dir_ + "/status.log'"};
  int rc = RunChild(argv, dir_, dir_ + "/status.log", 30, true);
  if (rc != 0) throw std::runtime_error("millions status failed");
  return json::parse(ReadFile(out)).as_object();
}

std::string ScenarioEnv::NodeAddress(const std::string& name) {
  auto st = Status();
  for (const auto& n : st["nodes"].as_array()) {
    const auto& o = n.as_object();
    if (o.at("name").as_string() == name) return std::string(o.at("address").as_string());
  }
  return "";
}

void ScenarioEnv::Chaos(const std::vector<std::string>& args) {
  std::vector<std::string> a{"chaos"};
  a.insert(a.end(), args.begin(), args.end());
  a.insert(a.end(), {"--topology", run_topology_});
  if (Millions(a, 60, "chaos.log") != 0)
    throw std::runtime_error("millions chaos failed: " + Tail(dir_ + "/chaos.log"));
}

void ScenarioEnv::Scale(const std::string& role, int count) {
  if (Millions({"scale", role, std::to_string(count), "--topology", run_topology_}, 180,
               "scale.log") != 0)
    throw std::runtime_error("millions scale failed: " + Tail(dir_ + "/scale.log"));
}

pid_t ScenarioEnv::StartMillions(const std::vector<std::string>& args, const std::string& log) {
  Check();
  std::vector<std::string> argv{bin_};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = SpawnChild(argv, dir_, dir_ + "/" + log);
  if (pid <= 0) throw std::runtime_error("cannot start millions " + args.at(0));
  background_.push_back(pid);
  return pid;
}

int ScenarioEnv::WaitMillions(pid_t pid, int timeout_s) {
  int rc = WaitChild(pid, timeout_s, true);
  std::erase(background_, pid);
  return rc;
}

LoadResult ScenarioEnv::Load(const std::string& target, int users, int seconds,
                             const std::string& mix, const std::function<void(double)>& during) {
  Check();
  std::string n = std::to_string(++seq_);
  std::string out = dir_ + "/load-" + n + ".json", log = "load-" + n + ".log";
  // The measured part starts after the users' set-up: the first progress line ("[  1s/..")
  // comes one second into it.
  std::optional<std::chrono::steady_clock::time_point> started;
  auto tick = [&] {
    if (!during) return;
    if (!started) {
      if (ReadFile(dir_ + "/" + log).find("\r[") == std::string::npos) return;
      started = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    }
    during(std::chrono::duration<double>(std::chrono::steady_clock::now() - *started).count());
  };
  int rc = Millions({"load", "--target", target, "--users", std::to_string(users), "--duration",
                     std::to_string(seconds), "--mix", mix, "--json", out},
                    seconds + 240, log, tick);
  Check();
  if (rc != 0 || !fs::exists(out))
    throw std::runtime_error("millions load failed (exit " + std::to_string(rc) + "):\n" +
                             Tail(dir_ + "/" + log));
  auto parsed = ParseLoadJson(ReadFile(out));
  if (!parsed) throw std::runtime_error("millions load wrote no summary we can read: " + out);
  return *parsed;
}

double ScenarioEnv::MetricAt(const std::string& addr, const std::string& metric,
                             const std::vector<std::string>& must) {
  http::FetchRequest r;
  auto colon = addr.rfind(':');
  r.host = addr.substr(0, colon);
  r.port = std::stoi(addr.substr(colon + 1));
  r.target = "/metrics";
  r.timeout = std::chrono::milliseconds(3000);
  auto res = http::Fetch(r);
  if (!res.ok() || res->status != 200) return 0;
  return SumMetric(res->body, metric, must);
}

double ScenarioEnv::MetricSum(const std::string& role, const std::string& metric,
                              const std::vector<std::string>& must) {
  double sum = 0;
  auto st = Status();
  for (const auto& n : st["nodes"].as_array()) {
    const auto& o = n.as_object();
    if (o.at("role").as_string() != role) continue;
    if (auto* s = o.if_contains("state"); s && s->as_string() != "running") continue;
    sum += MetricAt(std::string(o.at("address").as_string()), metric, must);
  }
  return sum;
}

}  // namespace millions::ctl
