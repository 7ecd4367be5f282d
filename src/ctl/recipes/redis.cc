// The Redis recipe: the cache nodes (L2). Nothing on disk (a restarted node starts empty),
// bounded memory and the topology's eviction policy; ready when it answers PING; its status adds
// memory, keys and evictions from INFO. Blocking I/O with short timeouts: the runner's own
// threads call these, never an event loop.
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <cstdlib>
#include <optional>

#include "cache/resp.h"
#include "ctl/recipes/recipes.h"
#include "ctl/secrets.h"

namespace millions::ctl {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using Clock = RunnerClock;

}  // namespace

// One command to a Redis node on a blocking socket (the runner's threads may block), bounded by
// `timeout` per socket operation; the reply, or nothing.
// One command on a fresh connection, within `timeout` in all: a paused Redis accepts the
// connection (the kernel does) and then says nothing, so every step waits with poll() against
// one deadline. (Blocking Asio reads ignore SO_RCVTIMEO: they poll again on EAGAIN, forever.)
std::optional<cache::RedisReply> RedisCommand(const std::string& host, int port,
                                              const std::vector<std::string>& argv,
                                              milliseconds timeout, const RedisAuth& auth) {
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
  // AUTH and the command in one write; the first reply is AUTH's.
  bool authenticating = !auth.password.empty();
  if (authenticating && auth.user.empty())
    cache::EncodeCommand({"AUTH", auth.password}, &wire);
  else if (authenticating)
    cache::EncodeCommand({"AUTH", auth.user, auth.password}, &wire);
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
    if (st == cache::RespParser::State::kReply && authenticating) {
      if (r.is_error()) break;
      authenticating = false;
      in.erase(0, used);
      continue;
    }
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

const RedisAuth& AdminAuth(const Node& n) {
  static const RedisAuth kNone;
  auto* e = dynamic_cast<const RedisExtra*>(n.extra.get());
  return e ? e->admin : kNone;
}

std::string RedisAclUser(const std::string& name, const std::string& password,
                         const std::string& rules) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(password.data()), password.size(), digest);
  static const char* kHex = "0123456789abcdef";
  std::string hash;
  for (unsigned char b : digest) {
    hash += kHex[b >> 4];
    hash += kHex[b & 15];
  }
  return "user " + name + " on #" + hash + " " + rules + "\n";
}

std::string WriteRedisFiles(const RecipeContext& ctx, const std::string& dir,
                            const std::string& users, const std::string& conf) {
  // No one may connect without a user and its password: the default user is off.
  secrets::WriteFile(dir + "/users.acl", "user default off resetkeys resetchannels -@all\n" + users,
                     ctx.engine_user);
  secrets::WriteFile(dir + "/redis.conf",
                     "# Written by `millions up` at every start (docs/credentials.md).\naclfile " +
                         dir + "/users.acl\n" + conf,
                     ctx.engine_user);
  return dir + "/redis.conf";
}

void AddRedisInfo(const Node& n, json::object* o) {
  auto r = RedisCommand(n.check_host, n.check_port, {"INFO"}, milliseconds(300), AdminAuth(n));
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

namespace {

// A Redis node is ready when it answers PING.
bool RedisReady(const Node& n, milliseconds timeout) {
  auto r = RedisCommand(n.check_host, n.check_port, {"PING"}, timeout, AdminAuth(n));
  return r && r->str == "PONG";
}

class RedisRecipe : public Recipe {
 public:
  const char* Kind() const override { return "redis"; }
  int Stage() const override { return 2; }
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override { return t.redis; }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    Node n = NodeFor(e, e.listen);
    std::string dir = ctx.run_dir + "/" + e.name;
    MakeDir(dir, ctx.engine_user);
    const auto& s = ctx.topology->redis_settings;
    auto extra = std::make_shared<RedisExtra>();
    extra->admin = {"admin", secrets::Get(ctx.run_dir, "redis_admin")};
    // The web nodes' user: the cache's commands, INFO (the evictions they report) and FLUSHALL
    // (a node that comes back empties itself before serving: it missed invalidations), nothing
    // else of @dangerous (CONFIG, DEBUG, SHUTDOWN, KEYS, REPLICAOF, ACL, ...).
    std::string users = RedisAclUser("admin", extra->admin.password, "~* &* +@all") +
                        RedisAclUser("cache", secrets::Get(ctx.run_dir, "redis_cache"),
                                     "~* &* +@all -@dangerous +info +flushall");
    std::string conf = WriteRedisFiles(ctx, dir, users, "");
    n.spawn = {{"redis-server", conf, "--port", std::to_string(n.check_port), "--bind",
                n.check_host, "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir,
                "--maxmemory", s.maxmemory, "--maxmemory-policy", s.eviction_policy},
               LogPath(ctx, e.name),
               ctx.engine_user,
               {}};
    n.extra = std::move(extra);
    return n;
  }

  bool Ready(const Node& n, milliseconds timeout) const override { return RedisReady(n, timeout); }

  StatusWriter StatusRows(const std::vector<Node>&) const override {
    return [](const Node& n, json::object row, json::array* out) {
      if (n.pid > 0) AddRedisInfo(n, &row);
      out->push_back(std::move(row));
    };
  }
};

}  // namespace

std::unique_ptr<Recipe> NewRedisRecipe() { return std::make_unique<RedisRecipe>(); }

}  // namespace millions::ctl
