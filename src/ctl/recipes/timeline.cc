// The timeline recipe: the store of home timelines, one redis-server per [[timeline.node]]. Unlike
// a cache node it is data: an append-only file (`appendfsync everysec`: a crash loses at most
// the last second) and no RDB snapshots, `noeviction` (a full store refuses writes instead of
// dropping timelines), and a replica. The first node is the primary, every other one runs with
// `replicaof` the first; the runner starts them in that order, each once the one before is
// ready. A primary is ready when it answers PING; a replica when its link to the primary is up.
// Status names each node's replication role as Redis reports it (db_role, like PostgreSQL's).
// Blocking I/O with short timeouts: the runner's own threads call these, never an event loop.
#include <cstdlib>
#include <utility>

#include "core/config.h"
#include "ctl/recipes/recipes.h"
#include "ctl/secrets.h"

namespace millions::ctl {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

// Which node of the store this is, fixed by its place in the topology; the runner's credentials.
struct TimelineExtra : RedisExtra {
  bool replica = false;
};

const TimelineExtra& ExtraOf(const Node& n) {
  static const TimelineExtra kNone;
  auto* e = dynamic_cast<const TimelineExtra*>(n.extra.get());
  return e ? *e : kNone;
}

// `field:value` from an INFO reply, or "" when absent.
std::string InfoField(const std::string& info, const std::string& name) {
  std::string key = "\n" + name + ":";
  size_t at = info.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  size_t end = info.find_first_of("\r\n", at);
  return info.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

std::optional<std::string> Info(const Node& n, const char* section, milliseconds timeout) {
  auto r = RedisCommand(n.check_host, n.check_port, {"INFO", section}, timeout, AdminAuth(n));
  if (!r || r->type != cache::RedisReply::Type::kString) return std::nullopt;
  return "\n" + r->str;
}

class TimelineRecipe : public Recipe {
 public:
  const char* Kind() const override { return "timeline"; }
  // After the cache nodes, before NATS, the web nodes and the workers that write and read it.
  int Stage() const override { return 3; }
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override {
    return t.timeline;
  }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    const topo::Topology& t = *ctx.topology;
    Node n = NodeFor(e, e.listen);
    std::string dir = ctx.run_dir + "/" + e.name;
    MakeDir(dir, ctx.engine_user);
    auto extra = std::make_shared<TimelineExtra>();
    extra->replica = !t.timeline.empty() && t.timeline.front().name != e.name;
    // The AOF is the durability (`save ""`: RDB snapshots would only add forks); a full store
    // refuses writes rather than evict a timeline.
    std::vector<std::pair<std::string, std::string>> flags = {
        {"--port", std::to_string(n.check_port)},
        {"--bind", n.check_host},
        {"--daemonize", "no"},
        {"--dir", dir},
        {"--save", ""},
        {"--appendonly", "yes"},
        {"--appendfsync", "everysec"},
        {"--maxmemory", t.timeline_settings.maxmemory},
        {"--maxmemory-policy", "noeviction"},
        // One replica: a sync starts at once (Redis waits 5 s for more replicas to share it).
        {"--repl-diskless-sync-delay", "0"}};
    std::vector<std::string> argv = {"redis-server"};
    for (auto& [flag, value] : flags) argv.insert(argv.end(), {flag, value});
    if (extra->replica) {  // host and port: two arguments (redis-server quotes each one)
      auto primary = config::ParseHostPort(t.timeline.front().listen);
      argv.insert(argv.end(), {"--replicaof", primary.host, std::to_string(primary.port)});
    }
    // Every node has the same users (a replica may be promoted by hand). The web nodes' and
    // workers' user: the store's commands and nothing of @dangerous (no FLUSHALL: a store is
    // never emptied). The replica's link: only what replication needs. Its password goes into
    // the configuration file, never onto the command line.
    extra->admin = {"admin", secrets::Get(ctx.run_dir, "redis_admin")};
    const std::string replica_pw = secrets::Get(ctx.run_dir, "redis_replica");
    std::string users = RedisAclUser("admin", extra->admin.password, "~* &* +@all") +
                        RedisAclUser("timeline", secrets::Get(ctx.run_dir, "redis_timeline"),
                                     "~* &* +@all -@dangerous") +
                        RedisAclUser("replica", replica_pw, "+psync +replconf +ping");
    std::string conf =
        WriteRedisFiles(ctx, dir, users, "masteruser replica\nmasterauth \"" + replica_pw + "\"\n");
    argv.insert(argv.begin() + 1, conf);
    n.spawn = {std::move(argv), LogPath(ctx, e.name), ctx.engine_user, {}};
    n.extra = std::move(extra);
    return n;
  }

  bool Ready(const Node& n, milliseconds timeout) const override {
    auto r = RedisCommand(n.check_host, n.check_port, {"PING"}, timeout, AdminAuth(n));
    if (!r || r->str != "PONG") return false;
    if (!ExtraOf(n).replica) return true;
    // A replica that has not synced would answer reads with an empty store.
    auto info = Info(n, "replication", timeout);
    return info && InfoField(*info, "master_link_status") == "up";
  }

  StatusWriter StatusRows(const std::vector<Node>&) const override {
    return [](const Node& n, json::object row, json::array* out) {
      // The role Redis reports now; the configured one when it does not answer.
      std::string role = ExtraOf(n).replica ? "replica" : "primary";
      if (n.pid > 0) {
        AddRedisInfo(n, &row);
        if (auto info = Info(n, "replication", milliseconds(300))) {
          role = InfoField(*info, "role") == "slave" ? "replica" : "primary";
          if (role == "replica") row["link"] = InfoField(*info, "master_link_status");
        }
        if (auto info = Info(n, "persistence", milliseconds(300)))
          row["aof_last_write"] = InfoField(*info, "aof_last_write_status");
      }
      row["db_role"] = role;
      out->push_back(std::move(row));
    };
  }
};

}  // namespace

std::unique_ptr<Recipe> NewTimelineRecipe() { return std::make_unique<TimelineRecipe>(); }

}  // namespace millions::ctl
