#include "ctl/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "core/config.h"
#include "ctl/process.h"

namespace millions::ctl::netns {
namespace {
namespace fs = std::filesystem;
namespace json = boost::json;

constexpr int kSlots = 64;      // a /21 each: 198.18.0.0/15 holds 64
constexpr int kMaxDcs = 6;      // networks 2..7 of the slot
constexpr int kMaxHosts = 240;  // host numbers 10..249 on a bridge
constexpr const char* kLock = "/run/millions-netns.lock";

// Network `net` (0: the root's link, 1: public, 2+i: DC i) of `slot`, host `host`.
std::string Addr(int slot, int net, int host) {
  int third = slot * 8 + net;
  return "198." + std::to_string(18 + third / 256) + "." + std::to_string(third % 256) + "." +
         std::to_string(host);
}

bool PublicRole(const std::string& role) { return role == "lb" || role == "edge" || role == "dns"; }

// The roles in start order, with their nodes.
std::vector<std::pair<std::string, std::vector<topo::NodeEntry>*>> Roles(topo::Topology* t) {
  return {{"etcd", &t->runner.etcd}, {"postgres", &t->postgres},
          {"redis", &t->redis},      {"timeline", &t->timeline},
          {"nats", &t->nats},        {"web", &t->web},
          {"worker", &t->worker},    {"lb", &t->lb},
          {"edge", &t->edge},        {"dns", &t->dns}};
}

std::string Moved(const std::string& address, const std::string& host) {
  return host + ":" + std::to_string(config::ParseHostPort(address).port);
}

std::string Record(const std::string& run_dir) { return run_dir + "/netns.json"; }

// Runs `ip ARGS...`, its output appended to the run's log; true when it exits 0.
bool Ip(const std::vector<std::string>& args, const std::string& log) {
  Spawn s;
  s.argv = {"ip"};
  s.argv.insert(s.argv.end(), args.begin(), args.end());
  s.log_path = log;
  auto pid = StartProcess(s);
  if (!pid.ok()) return false;
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// `ip [-n NS] [-force] -batch FILE` with `lines`.
bool Batch(const std::string& ns, const std::vector<std::string>& lines, const std::string& dir,
           bool force) {
  std::string file = dir + "/netns.batch";
  {
    std::ofstream out(file, std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
  }
  std::vector<std::string> args;
  if (!ns.empty()) args = {"-n", ns};
  if (force) args.push_back("-force");
  args.insert(args.end(), {"-batch", file});
  bool ok = Ip(args, dir + "/logs/netns.log");
  fs::remove(file);
  return ok;
}

// Writes a sysctl inside namespace `ns` (/proc/sys/net is the opening thread's namespace's).
bool SysctlIn(const std::string& ns, const std::string& path, const std::string& value) {
  int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = false;
  std::thread t([&] {
    if (setns(fd, CLONE_NEWNET) != 0) return;
    std::ofstream out(path);
    out << value;
    ok = static_cast<bool>(out.flush());
  });
  t.join();
  close(fd);
  return ok;
}

bool SlotFree(int slot) {
  std::string prefix = "mn" + std::to_string(slot) + "-";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) return false;
  return !fs::exists("/sys/class/net/mn" + std::to_string(slot) + "h");
}

// The machine-wide lock over slots, held while it lives.
class Lock {
 public:
  Lock() : fd_(open(kLock, O_CREAT | O_RDWR | O_CLOEXEC, 0600)) {
    if (fd_ >= 0) flock(fd_, LOCK_EX);
  }
  ~Lock() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  int fd_;
};

// Kills every process whose network namespace is `ns` (one a dead runner's node left).
void KillIn(const std::string& ns) {
  struct stat st {};
  if (stat(("/run/netns/" + ns).c_str(), &st) != 0) return;
  std::string want = "net:[" + std::to_string(st.st_ino) + "]";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code lec;
    if (fs::read_symlink(e.path() / "ns/net", lec).string() == want) kill(std::stoi(name), SIGKILL);
  }
}

bool TeardownLocked(const std::string& run_dir) {
  std::ifstream in(Record(run_dir));
  if (!in) return false;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  std::vector<std::string> lines;
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    if (auto* l = o.if_contains("link"); l && l->is_string())
      lines.push_back("link del " + std::string(l->as_string()));
    if (auto* a = o.if_contains("namespaces"); a && a->is_array())
      for (const auto& ns : a->as_array()) {
        if (!ns.is_string()) continue;
        std::string name(ns.as_string());
        if (name.rfind("mn", 0) != 0 || name.find('/') != std::string::npos) continue;
        KillIn(name);
        lines.push_back("netns del " + name);
      }
  }
  if (!lines.empty()) Batch("", lines, run_dir, true);
  fs::remove(Record(run_dir));
  return true;
}

}  // namespace

std::vector<std::string> Network::Namespaces() const {
  std::vector<std::string> out = {router_ns, public_ns};
  for (const auto& h : hosts) out.push_back(h.ns);
  return out;
}

Network Plan(const topo::Topology& t, int slot) {
  Network net;
  net.active = true;
  net.slot = slot;
  net.prefix = "mn" + std::to_string(slot);
  net.cidr = Addr(slot, 0, 0) + "/21";
  net.router_ns = net.prefix + "-router";
  net.public_ns = net.prefix + "-public";
  net.root_link = net.prefix + "h";
  net.client = Addr(slot, 1, 2);
  size_t dcs = std::max<size_t>(1, t.dcs.size());
  if (dcs > kMaxDcs)
    throw config::ConfigError(t.path + ": [network] mode netns takes at most " +
                              std::to_string(kMaxDcs) + " data centres");
  for (size_t i = 0; i < dcs; ++i) net.dc_gateways.push_back(Addr(slot, 2 + int(i), 1));
  topo::Topology copy = t;
  int index = 0;
  for (auto& [role, nodes] : Roles(&copy)) {
    for (const auto& e : *nodes) {
      if (++index > kMaxHosts)
        throw config::ConfigError(t.path + ": [network] mode netns takes at most " +
                                  std::to_string(kMaxHosts) + " nodes");
      Host h;
      h.node = e.name;
      h.ns = net.prefix + "-" + e.name;
      h.index = index;
      for (size_t i = 0; i < t.dcs.size(); ++i)
        if (t.dcs[i] == e.dc) h.dc_index = int(i);
      h.priv = Addr(slot, 2 + h.dc_index, 10 + index);
      bool pub = PublicRole(role);
      if (pub) h.pub = Addr(slot, 1, 10 + index);
      auto move = [&](const std::string& a, bool public_side) {
        if (!a.empty()) net.rewrite[a] = Moved(a, public_side ? h.pub : h.priv);
      };
      move(e.listen, pub);
      move(e.tls_listen, pub);
      move(e.admin, false);
      move(e.rest, false);
      move(e.peer, false);
      net.hosts.push_back(std::move(h));
    }
  }
  return net;
}

void Apply(const Network& net, topo::Topology* t) {
  auto move = [&](topo::NodeEntry& e) {
    for (std::string* a : {&e.listen, &e.tls_listen, &e.admin, &e.rest, &e.peer})
      if (auto it = net.rewrite.find(*a); it != net.rewrite.end()) *a = it->second;
  };
  for (auto& [role, nodes] : Roles(t))
    for (auto& e : *nodes) move(e);
  // The clusters hold copies of the postgres nodes (one per shard, or the one cluster): the
  // runner creates each cluster's database through them, the web nodes route by them.
  for (auto& c : t->pg_clusters)
    for (auto& e : c.nodes) move(e);
  for (auto& c : t->dc_clusters)
    for (auto& e : c.nodes) move(e);
}

std::string RewriteText(const Network& net, std::string text) {
  for (const auto& [from, to] : net.rewrite) {
    std::string a = "\"" + from + "\"", b = "\"" + to + "\"";
    for (size_t at = text.find(a); at != std::string::npos; at = text.find(a, at + b.size()))
      text.replace(at, a.size(), b);
  }
  return text;
}

std::string NamespacePath(const Network& net, const std::string& node) {
  if (!net.active) return "";
  for (const auto& h : net.hosts)
    if (h.node == node) return "/run/netns/" + h.ns;
  return "";
}

bool Supported(std::string* why) {
  if (geteuid() != 0) {
    *why = "not root";
    return false;
  }
  if (access("/proc/self/ns/net", R_OK) != 0) {
    *why = "no network namespaces in this kernel";
    return false;
  }
  std::string probe = "mnprobe" + std::to_string(getpid());
  if (!Ip({"netns", "add", probe}, "/dev/null")) {
    *why = "`ip netns add` failed (no iproute2, or namespaces not allowed here)";
    return false;
  }
  Ip({"netns", "del", probe}, "/dev/null");
  return true;
}

Result<Network> Setup(topo::Topology* t, const std::string& run_dir) {
  Lock lock;
  fs::create_directories(run_dir + "/logs");
  // A record left by a runner that died: its namespaces are reused when they all still exist
  // (its nodes may still run there, to be adopted), else removed.
  int slot = -1;
  {
    std::ifstream in(Record(run_dir));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (in && !ec && v.is_object() && v.as_object().contains("slot")) {
      int old = static_cast<int>(v.at("slot").to_number<int64_t>());
      Network again = Plan(*t, old);
      bool all = true;
      for (const auto& ns : again.Namespaces()) all = all && fs::exists("/run/netns/" + ns);
      if (all && old >= 0 && old < kSlots) {
        Apply(again, t);
        return again;
      }
      TeardownLocked(run_dir);
    } else if (in) {
      TeardownLocked(run_dir);
    }
  }
  for (int s = 0; s < kSlots && slot < 0; ++s)
    if (SlotFree(s)) slot = s;
  if (slot < 0)
    return MakeError(Errc::kInternal, "netns_full",
                     "every network slot (198.18.0.0/15 in /21s) is taken by another run");
  Network net = Plan(*t, slot);
  {
    json::array names;
    for (const auto& ns : net.Namespaces()) names.emplace_back(ns);
    json::object hosts;
    for (const auto& h : net.hosts)
      hosts[h.node] = {{"ns", h.ns}, {"priv", h.priv}, {"pub", h.pub}};
    // What tests and operators need to reach the public side from its namespace.
    json::object rec{{"slot", slot},
                     {"link", net.root_link},
                     {"namespaces", names},
                     {"cidr", net.cidr},
                     {"public_ns", net.public_ns},
                     {"client", net.client},
                     {"public_gateway", Addr(slot, 1, 1)},
                     {"hosts", hosts}};
    std::ofstream(Record(run_dir)) << json::serialize(rec) << "\n";
  }
  auto fail = [&](const std::string& what) -> Result<Network> {
    TeardownLocked(run_dir);
    return MakeError(
        Errc::kInternal, "netns",
        "network namespaces: " + what + " failed (see " + run_dir + "/logs/netns.log)");
  };
  // The machine's side: the namespaces and its one link into the router.
  std::vector<std::string> root;
  for (const auto& ns : net.Namespaces()) root.push_back("netns add " + ns);
  root.push_back("link add " + net.root_link + " type veth peer name h0 netns " + net.router_ns);
  root.push_back("addr add " + Addr(slot, 0, 1) + "/24 dev " + net.root_link);
  root.push_back("link set " + net.root_link + " up");
  root.push_back("route add " + net.cidr + " via " + Addr(slot, 0, 2) + " dev " + net.root_link);
  if (!Batch("", root, run_dir, false)) return fail("the namespaces and the machine's link");
  // The router: a bridge per DC and the public one, each host's veth pairs on them.
  std::vector<std::string> r = {"link set lo up",
                                "addr add " + Addr(slot, 0, 2) + "/24 dev h0",
                                "link set h0 up",
                                "link add brpub type bridge",
                                "addr add " + Addr(slot, 1, 1) + "/24 dev brpub",
                                "link set brpub up"};
  for (size_t i = 0; i < net.dc_gateways.size(); ++i) {
    std::string br = "brdc" + std::to_string(i);
    r.push_back("link add " + br + " type bridge");
    r.push_back("addr add " + net.dc_gateways[i] + "/24 dev " + br);
    r.push_back("link set " + br + " up");
  }
  r.push_back("link add c0 type veth peer name eth0 netns " + net.public_ns);
  r.push_back("link set c0 master brpub");
  r.push_back("link set c0 up");
  for (const auto& h : net.hosts) {
    std::string v = "v" + std::to_string(h.index), p = "p" + std::to_string(h.index);
    r.push_back("link add " + v + " type veth peer name eth0 netns " + h.ns);
    r.push_back("link set " + v + " master brdc" + std::to_string(h.dc_index));
    r.push_back("link set " + v + " up");
    if (h.pub.empty()) continue;
    r.push_back("link add " + p + " type veth peer name pub0 netns " + h.ns);
    r.push_back("link set " + p + " master brpub");
    r.push_back("link set " + p + " up");
  }
  // Nothing that came in from the public side is forwarded: from there only the public
  // addresses (on the bridge itself) answer, whatever routes a client adds.
  r.push_back("rule add iif brpub prohibit pref 100");
  if (!Batch(net.router_ns, r, run_dir, false)) return fail("the router's bridges and links");
  if (!SysctlIn(net.router_ns, "/proc/sys/net/ipv4/ip_forward", "1"))
    return fail("forwarding in the router");
  for (const auto& h : net.hosts) {
    std::string gw = net.dc_gateways[size_t(h.dc_index)];
    std::vector<std::string> lines = {"link set lo up", "addr add " + h.priv + "/24 dev eth0",
                                      "link set eth0 up",
                                      "route add " + net.cidr + " via " + gw + " dev eth0"};
    if (!h.pub.empty()) {
      lines.push_back("addr add " + h.pub + "/24 dev pub0");
      lines.push_back("link set pub0 up");
    }
    if (!Batch(h.ns, lines, run_dir, false)) return fail("host " + h.node);
  }
  // The clients' namespace: the public bridge only, no route anywhere else.
  if (!Batch(net.public_ns,
             {"link set lo up", "addr add " + net.client + "/24 dev eth0", "link set eth0 up"},
             run_dir, false))
    return fail("the public namespace");
  Apply(net, t);
  return net;
}

bool Teardown(const std::string& run_dir) {
  if (!fs::exists(Record(run_dir))) return false;
  Lock lock;
  return TeardownLocked(run_dir);
}

}  // namespace millions::ctl::netns
