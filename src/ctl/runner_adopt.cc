// What keeps the system whole when a process freezes or the supervisor itself dies:
// - run/nodes.json records every node's pid and start time; a new `millions up` over the run
//   dir of a runner that died adopts the nodes still running (and stops those the topology no
//   longer names), instead of failing on taken ports with orphans nobody stops.
// - The fencing watchdog: Patroni's own answer to a frozen leader is a hardware watchdog, which
//   a machine like this one does not have. The supervisor plays it: when the leader's Patroni
//   stops answering, its whole node is killed before its leader lease can expire.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "core/config.h"
#include "core/http_client.h"
#include "core/log.h"
#include "ctl/runner_internal.h"

namespace millions::ctl::detail {
namespace fs = std::filesystem;

void Runner::SaveNodes() {
  static std::mutex save_mu;  // the supervisor and admin threads both start nodes
  std::lock_guard save(save_mu);
  json::array arr;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_) {
      if (n->pid <= 0) continue;
      arr.push_back(json::object{{"name", n->name},
                                 {"role", n->role},
                                 {"dc", n->dc},
                                 {"address", n->address},
                                 {"pid", n->pid},
                                 {"start", n->start_ticks}});
    }
  }
  std::string text = json::serialize(arr);
  if (text == last_saved_ || run_.empty()) return;
  // Written whole and renamed: a runner killed mid-write leaves the previous file, never half.
  std::string tmp = run_ + "/nodes.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
    if (!out) return;
  }
  std::error_code ec;
  fs::rename(tmp, run_ + "/nodes.json", ec);
  if (!ec) last_saved_ = std::move(text);
}

void Runner::RestoreScaledNodes() {
  std::ifstream in(run_ + "/nodes.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_array()) return;
  previous_ = v.as_array();
  // Web nodes added by `scale` are not in the topology file: they come back as they were.
  std::set<std::string> known;
  for (const auto& e : t_.web) known.insert(e.name);
  for (const auto& p : previous_) {
    if (!p.is_object() || !p.as_object().contains("role") || p.at("role") != "web") continue;
    std::string name(p.at("name").as_string());
    if (known.count(name)) continue;
    topo::NodeEntry e{name,
                     std::string(p.at("dc").as_string()),
                     std::string(p.at("address").as_string()),
                     "",
                     "",
                     "",
                     ""};
    extra_web_.push_back(e);
    known.insert(name);
  }
}

void Runner::AdoptNodes() {
  std::vector<std::string> adopted, stopped;
  for (const auto& p : previous_) {
    if (!p.is_object()) continue;
    const auto& o = p.as_object();
    if (!o.contains("name") || !o.contains("pid") || !o.contains("start")) continue;
    std::string name(o.at("name").as_string());
    auto pid = static_cast<pid_t>(o.at("pid").to_number<int64_t>());
    auto start = o.at("start").to_number<uint64_t>();
    if (ProcessStartTicks(pid) != start) continue;  // gone, or its pid now names another
    Node* n = Find(name);
    if (!n) {
      // Not in the topology any more: stop it, as `down` would have.
      SignalGroup(pid, SIGCONT);
      SignalGroup(pid, SIGTERM);
      stopped.push_back(name);
      continue;
    }
    std::lock_guard lock(mu_);
    n->pid = pid;
    n->start_ticks = start;
    n->adopted = true;
    n->state = "starting";
    n->started_at = Clock::now();
    adopted.push_back(name);
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  if (!adopted.empty()) {
    fprintf(stderr, "  adopting %zu running node(s) left by a runner that died: %s\n",
            adopted.size(), list(adopted).c_str());
    log::Warn("adopting nodes of a runner that died", {{"nodes", list(adopted)}});
  }
  if (!stopped.empty())
    fprintf(stderr, "  stopping node(s) the topology no longer names: %s\n", list(stopped).c_str());
  if (!previous_.empty() && adopted.empty())
    fprintf(stderr, "  no node of the previous runner is still running: starting afresh\n");
}

void Runner::Fence(Node& n, const std::string& why) {
  pid_t pid;
  {
    std::lock_guard lock(mu_);
    pid = n.pid;
  }
  // A stopped process still dies of SIGKILL: Patroni cannot wake to rewrite the leader key, and
  // its PostgreSQL (with every backend) cannot acknowledge one more write.
  if (pid > 0) SignalGroup(pid, SIGKILL);
  SignalPostgres(n, SIGKILL);
  Event(n.name, "fenced (watchdog): " + why);
}

// Whether a PostgreSQL at host:port answers at all: an SSLRequest gets one byte back ('S' or
// 'N') from any live postmaster, even one in crash recovery. Frozen is a timeout (the kernel
// accepts the connection, nobody answers); down is a refusal, which Patroni handles itself.
namespace {
enum class PgProbe { kAnswered, kRefused, kSilent };
PgProbe ProbePostgres(const std::string& hostport, milliseconds timeout) {
  auto hp = config::ParseHostPort(hostport);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return PgProbe::kRefused;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(hp.port));
  if (inet_pton(AF_INET, hp.host.c_str(), &a.sin_addr) != 1) {
    close(fd);
    return PgProbe::kRefused;
  }
  auto deadline = Clock::now() + timeout;
  auto wait = [&](short events) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, events, 0};
    return left > 0 && ::poll(&p, 1, static_cast<int>(left)) > 0;
  };
  PgProbe result = PgProbe::kSilent;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    result = PgProbe::kRefused;
  } else if (!wait(POLLOUT)) {
    result = PgProbe::kSilent;
  } else {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    const unsigned char ssl_request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
    char reply;
    if (err != 0 || send(fd, ssl_request, sizeof ssl_request, MSG_NOSIGNAL) != 8)
      result = PgProbe::kRefused;
    else if (wait(POLLIN))
      result = recv(fd, &reply, 1, 0) == 1 ? PgProbe::kAnswered : PgProbe::kRefused;
  }
  close(fd);
  return result;
}
}  // namespace

void Runner::FenceLoop() {
  const auto bound = milliseconds(t_.runner.fence_after_ms);
  if (bound.count() <= 0) return;
  const auto probe_timeout = std::min(milliseconds(1000), bound / 2);
  std::string watched;
  pid_t watched_pid = 0;
  auto patroni_ok = Clock::now(), pg_ok = Clock::now();
  while (!g_stop) {
    std::this_thread::sleep_for(milliseconds(250));
    std::string host, pg_address, leader;
    int port = 0;
    pid_t pid = 0;
    {
      std::lock_guard lock(mu_);
      leader = leader_;
      Node* n = leader.empty() ? nullptr : Find(leader);
      if (n && n->pid > 0 && n->state == "running") {
        host = n->check_host;
        port = n->check_port;
        pid = n->pid;
        pg_address = n->address;
      }
    }
    if (pid <= 0) {
      watched.clear();
      continue;
    }
    if (leader != watched || pid != watched_pid) {
      watched = leader;
      watched_pid = pid;
      patroni_ok = pg_ok = Clock::now();
    }
    http::FetchRequest r;
    r.host = host;
    r.port = port;
    r.target = "/liveness";
    r.timeout = probe_timeout;
    auto res = http::Fetch(r);
    if (res.ok() && res->status == 200) patroni_ok = Clock::now();
    // A frozen PostgreSQL under a live Patroni: Patroni keeps renewing the lock and no failover
    // comes, so every write waits for as long as the freeze lasts.
    if (ProbePostgres(pg_address, probe_timeout) != PgProbe::kSilent) pg_ok = Clock::now();
    auto now = Clock::now();
    auto patroni_silent = std::chrono::duration_cast<milliseconds>(now - patroni_ok);
    auto pg_silent = std::chrono::duration_cast<milliseconds>(now - pg_ok);
    std::string why;
    if (patroni_silent >= bound)
      why = "the leader's Patroni has not answered for " + std::to_string(patroni_silent.count()) +
            " ms";
    else if (pg_silent >= bound)
      why = "the leader's PostgreSQL has not answered for " + std::to_string(pg_silent.count()) +
            " ms";
    if (why.empty()) continue;
    Node* n;
    {
      std::lock_guard lock(mu_);
      n = Find(leader);
    }
    if (!n) continue;
    Fence(*n, why + "; Patroni and PostgreSQL killed before the leader lease (ttl " +
                  std::to_string(t_.runner.patroni_ttl_s) + " s) can expire");
    watched.clear();
  }
}

}  // namespace millions::ctl::detail
