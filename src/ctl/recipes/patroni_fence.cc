// The Patroni recipe's supervision (patroni.h): the leader as Patroni reports it, and the
// fencing watchdog. Patroni's own answer to a frozen leader is a hardware watchdog, which a
// machine like this one does not have. The supervisor plays it: when the leader's Patroni (or
// its PostgreSQL) stops answering, its whole node is killed before its leader lease can expire
// (docs/faults.md).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "core/config.h"
#include "core/http_client.h"
#include "ctl/recipes/patroni.h"

namespace millions::ctl::patroni {
namespace {

// Whether a PostgreSQL at host:port answers at all: an SSLRequest gets one byte back ('S' or
// 'N') from any live postmaster, even one in crash recovery. Frozen is a timeout (the kernel
// accepts the connection, nobody answers); down is a refusal, which Patroni handles itself.
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

void PatroniRecipe::Tick(const RecipeContext&, RecipeHost& host) {
  // Each cluster (a Patroni scope of its own) has its own leader.
  for (const auto& [cluster, nodes] : ByCluster(host.Nodes(Kind()))) {
    std::vector<std::pair<std::string, int>> rests;
    for (const Node& n : nodes)
      if (n.pid > 0) rests.emplace_back(n.check_host, n.check_port);
    for (const auto& m : Members(rests, milliseconds(300))) {
      if (!m.is_object() || !m.as_object().contains("role") || m.at("role") != "leader") continue;
      std::string now(m.at("name").as_string());
      std::string was;
      {
        std::lock_guard lock(mu_);
        was = leader_[cluster];
        leader_[cluster] = now;
      }
      if (now != was && !was.empty()) host.Event(now, "promoted to primary (was " + was + ")");
      break;
    }
    // No leader right now (failover under way): keep the last one.
  }
}

bool PatroniRecipe::Watchdog(const RecipeContext& ctx) const {
  return ctx.topology->runner.fence_after_ms > 0;
}

void PatroniRecipe::Fence(const Node& n, const std::string& why, RecipeHost& host) {
  pid_t pid = 0;
  for (const Node& now : host.Nodes(Kind()))
    if (now.name == n.name) pid = now.pid;
  // A stopped process still dies of SIGKILL: Patroni cannot wake to rewrite the leader key, and
  // its PostgreSQL (with every backend) cannot acknowledge one more write.
  if (pid > 0) SignalGroup(pid, SIGKILL);
  SignalPostgres(n, SIGKILL);
  host.Event(n.name, "fenced (watchdog): " + why);
}

void PatroniRecipe::Watch(const RecipeContext& ctx, RecipeHost& host) {
  std::map<std::string, std::string> leaders;
  {
    std::lock_guard lock(mu_);
    leaders = leader_;
  }
  std::vector<Node> nodes;
  for (const auto& [cluster, leader] : leaders)
    if (!leader.empty()) {
      if (nodes.empty()) nodes = host.Nodes(Kind());
      WatchLeader(ctx, host, cluster, leader, nodes);
    }
}

void PatroniRecipe::WatchLeader(const RecipeContext& ctx, RecipeHost& host,
                                const std::string& cluster, const std::string& leader,
                                const std::vector<Node>& nodes) {
  const auto bound = milliseconds(ctx.topology->runner.fence_after_ms);
  const auto probe_timeout = std::min(milliseconds(1000), bound / 2);
  Watched& w = watched_[cluster];
  const Node* n = nullptr;
  for (const Node& each : nodes)
    if (each.name == leader && each.pid > 0 && each.state == "running") n = &each;
  if (!n) {
    w.name.clear();
    return;
  }
  if (leader != w.name || n->pid != w.pid) {
    w.name = leader;
    w.pid = n->pid;
    w.patroni_ok = w.pg_ok = Clock::now();
  }
  http::FetchRequest r;
  r.host = n->check_host;
  r.port = n->check_port;
  r.target = "/liveness";
  r.timeout = probe_timeout;
  auto res = http::Fetch(r);
  if (res.ok() && res->status == 200) w.patroni_ok = Clock::now();
  // A frozen PostgreSQL under a live Patroni: Patroni keeps renewing the lock and no failover
  // comes, so every write waits for as long as the freeze lasts.
  if (ProbePostgres(n->address, probe_timeout) != PgProbe::kSilent) w.pg_ok = Clock::now();
  auto now = Clock::now();
  auto patroni_silent = std::chrono::duration_cast<milliseconds>(now - w.patroni_ok);
  auto pg_silent = std::chrono::duration_cast<milliseconds>(now - w.pg_ok);
  std::string why;
  if (patroni_silent >= bound)
    why = "the leader's Patroni has not answered for " + std::to_string(patroni_silent.count()) +
          " ms";
  else if (pg_silent >= bound)
    why =
        "the leader's PostgreSQL has not answered for " + std::to_string(pg_silent.count()) + " ms";
  if (why.empty()) return;
  Fence(*n,
        why + "; Patroni and PostgreSQL killed before the leader lease (ttl " +
            std::to_string(ctx.topology->runner.patroni_ttl_s) + " s) can expire",
        host);
  w.name.clear();
}

}  // namespace millions::ctl::patroni
