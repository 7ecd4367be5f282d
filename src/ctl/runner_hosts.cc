// The runner of one host of several (`millions up --host H`, docs/deploy.md "Beyond one
// machine"): the deployment's secrets made on the first host and checked on the others, and the
// other hosts' nodes, which this runner does not start but probes for status (the balancers
// follow the web nodes of every host through it). Blocking I/O with short timeouts, on the
// runner's own threads (RemoteLoop), never an event loop.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <thread>

#include "core/config.h"
#include "ctl/runner_internal.h"
#include "ctl/secrets.h"
#include "ctl/upstream_tls.h"

namespace millions::ctl::detail {
namespace {

// Whether host:port (an IP literal) takes a TCP connection within `timeout`.
bool Connects(const std::string& host, int port, milliseconds timeout) {
  sockaddr_storage a{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v6;
  } else {
    return false;
  }
  int fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), len) == 0) {
    ok = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) > 0) {
      int err = 0;
      socklen_t elen = sizeof err;
      ok = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0;
    }
  }
  close(fd);
  return ok;
}

}  // namespace

std::string PrepareHostSecrets(const topo::Topology& t, const std::string& run_dir) {
  if (t.hosts.empty() || t.this_host.empty()) return "";
  const std::string first = t.hosts.front().name;
  try {
    if (topo::IsFirstHost(t)) {
      secrets::EnsureAll(run_dir);
      return "";
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  std::vector<std::string> missing = secrets::Missing(run_dir);
  bool tls = false;
  for (const auto& w : t.web) tls = tls || !w.tls_listen.empty();
  namespace fs = std::filesystem;
  std::string ca_dir = topo::UpstreamTlsDir(run_dir);
  if (tls && !(fs::exists(ca_dir + "/ca.pem") && fs::exists(ca_dir + "/ca.key")))
    missing.push_back("the upstream CA (" + ca_dir + "/ca.pem and ca.key)");
  if (missing.empty()) return "";
  std::string names;
  for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
  return "host " + t.this_host + " has not the deployment's secrets (" + names +
         "): every host uses the ones the first host (" + first +
         ") made at its first `up --host " + first + "`. Copy its " + secrets::Dir(run_dir) +
         " here" + (tls ? " (and its " + ca_dir + "/ca.pem and ca.key)" : "") + ", e.g. `scp -rp " +
         first + ":" + secrets::Dir(run_dir) + " " + run_dir + "/`, then run this again";
}

bool AllLocalRunning(const std::string& status_body) {
  boost::system::error_code ec;
  auto v = json::parse(status_body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("nodes") || !v.at("nodes").is_array())
    return false;
  for (const auto& n : v.at("nodes").as_array()) {
    if (!n.is_object() || n.as_object().contains("remote")) continue;
    const auto* state = n.as_object().if_contains("state");
    if (!state || !state->is_string() || *state == "starting" || *state == "stopped") return false;
  }
  return true;
}

std::string Runner::HostFor(const std::string& address) const {
  if (t_.hosts.empty()) return "";
  std::string ip = config::ParseHostPort(address).host;
  for (const auto& h : t_.hosts)
    if (!h.address.empty() && h.address == ip) return h.name;
  return t_.this_host.empty() ? t_.hosts.front().name : t_.this_host;
}

void Runner::RemoteLoop() {
  while (!g_stop && !remote_stop_) {
    std::vector<std::pair<std::string, std::pair<std::string, int>>> targets;
    {
      std::lock_guard lock(mu_);
      for (const Node& n : remote_) targets.push_back({n.name, {n.check_host, n.check_port}});
    }
    if (targets.empty()) return;
    for (const auto& [name, hp] : targets) {
      bool up = Connects(hp.first, hp.second, milliseconds(300));
      std::lock_guard lock(mu_);
      for (Node& n : remote_)
        if (n.name == name) n.state = up ? "running" : "stopped";
    }
    for (int i = 0; i < 10 && !g_stop && !remote_stop_; ++i)
      std::this_thread::sleep_for(milliseconds(100));
  }
}

void Runner::RemoteRows(json::array* out) {
  std::lock_guard lock(mu_);
  for (const Node& n : remote_) {
    // Its listen address; its state is whether its check endpoint (Patroni's REST API, a
    // balancer's admin listener, ...) took a connection at the last probe.
    out->push_back(json::object{{"name", n.name},
                                {"role", n.role},
                                {"dc", n.dc},
                                {"address", n.address},
                                {"state", n.state},
                                {"pid", 0},
                                {"host", n.host},
                                {"remote", true}});
    if (!n.tls_address.empty()) out->back().as_object()["tls_address"] = n.tls_address;
  }
}

}  // namespace millions::ctl::detail
