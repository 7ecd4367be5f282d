// Talking to the engines the runner starts: readiness checks (HTTP, Redis PING), Patroni's
// cluster view and configuration, Redis INFO. Blocking I/O with short timeouts: the runner's
// own threads call these, never an event loop.
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <optional>

#include "cache/resp.h"
#include "ctl/runner_internal.h"

namespace millions::ctl::detail {

std::string Abs(const std::string& p) {
  return std::filesystem::absolute(p).lexically_normal().string();
}

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
// One command on a fresh connection, within `timeout` in all: a paused Redis accepts the
// connection (the kernel does) and then says nothing, so every step waits with poll() against
// one deadline. (Blocking Asio reads ignore SO_RCVTIMEO: they poll again on EAGAIN, forever.)
std::optional<cache::RedisReply> RedisCommand(const std::string& host, int port,
                                              const std::vector<std::string>& argv,
                                              milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s(ioc);
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  s.open(boost::asio::ip::tcp::v4(), ec);
  if (ec) return std::nullopt;
  s.non_blocking(true, ec);
  if (ec) return std::nullopt;
  auto wait = [&](short events) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{s.native_handle(), events, 0};
    return ::poll(&p, 1, static_cast<int>(left)) > 0;
  };
  s.connect({addr, static_cast<uint16_t>(port)}, ec);
  if (ec == boost::asio::error::in_progress || ec == boost::asio::error::would_block) {
    if (!wait(POLLOUT)) return std::nullopt;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
      return std::nullopt;
  } else if (ec) {
    return std::nullopt;
  }
  std::string wire, in;
  cache::EncodeCommand(argv, &wire);
  for (size_t sent = 0; sent < wire.size();) {
    size_t n = s.write_some(boost::asio::buffer(wire.data() + sent, wire.size() - sent), ec);
    if (ec == boost::asio::error::would_block) {
      if (!wait(POLLOUT)) return std::nullopt;
    } else if (ec) {
      return std::nullopt;
    }
    sent += n;
  }
  cache::RespParser parser;
  while (in.size() < (1 << 20)) {
    cache::RedisReply r;
    size_t used = 0;
    auto st = parser.Parse(in, &r, &used);
    if (st == cache::RespParser::State::kReply) return r;
    if (st == cache::RespParser::State::kProtocolError) break;
    char buf[4096];
    size_t n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec == boost::asio::error::would_block) {
      if (!wait(POLLIN)) break;
      continue;
    }
    if (ec) break;
    in.append(buf, n);
  }
  return std::nullopt;
}

// A Redis node is ready when it answers PING.
bool RedisReady(const std::string& host, int port, milliseconds timeout) {
  auto r = RedisCommand(host, port, {"PING"}, timeout);
  return r && r->str == "PONG";
}

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

bool Ready(const Node& n, milliseconds timeout) {
  if (n.role == "redis") return RedisReady(n.check_host, n.check_port, timeout);
  http::FetchRequest r;
  r.host = n.check_host;
  r.port = n.check_port;
  r.target = n.check_path;
  r.timeout = timeout;
  auto res = http::Fetch(r);
  return res.ok() && res->status == 200;
}

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

std::string PatroniYaml(const topo::Topology& t, const topo::NodeEntry& n, const std::string& dir) {
  auto pg = config::ParseHostPort(n.listen);
  const auto& r = t.runner;
  std::string s;
  s += "scope: millions\nname: " + n.name + "\n";
  s += "restapi:\n  listen: " + n.rest + "\n  connect_address: " + n.rest + "\n";
  std::string hosts;
  for (const auto& e : r.etcd) hosts += (hosts.empty() ? "" : ",") + e.listen;
  s += "etcd3:\n  hosts: " + hosts + "\n";
  s += "bootstrap:\n  dcs:\n    ttl: " + std::to_string(r.patroni_ttl_s) +
       "\n    loop_wait: " + std::to_string(r.patroni_loop_wait_s) +
       "\n    retry_timeout: " + std::to_string(r.patroni_retry_timeout_s) +
       "\n    maximum_lag_on_failover: 1048576\n" +
       "    synchronous_mode: " + (r.patroni_synchronous_mode ? "true" : "false") +
       "\n    synchronous_mode_strict: " + (r.patroni_synchronous_mode_strict ? "true" : "false") +
       "\n    failsafe_mode: " + (r.patroni_failsafe_mode ? "true" : "false") +
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

}  // namespace millions::ctl::detail
