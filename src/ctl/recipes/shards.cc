// Sharded topologies under `up` (patroni.h, docs/sharding.md): the shard map in etcd and each
// cluster's schema and fence, once every cluster has a primary; and the shards in status.
// Blocking I/O with short timeouts, on the runner's own threads.
#include <thread>

#include "core/config.h"
#include "ctl/recipes/patroni.h"
#include "ctl/secrets.h"
#include "data/shard_fence.h"
#include "data/shard_map_etcd.h"

namespace millions::ctl::patroni {
namespace json = boost::json;

namespace {

data::EtcdOptions EtcdFor(const RecipeContext& ctx) {
  data::EtcdOptions o;
  for (const auto& e : ctx.topology->runner.etcd) o.endpoints.push_back(e.listen);
  o.key = data::ShardMapKey(ctx.topology->name);
  o.user = "shardmap";
  o.password = secrets::Get(ctx.run_dir, secrets::kEtcdShardMap);
  o.timeout = milliseconds(2000);
  return o;
}

// The application's role on the cluster's writable member: it owns the schema (patroni.cc made
// it so), hence it migrates, as the web nodes would.
pg::Options AppOptions(const RecipeContext& ctx, const topo::PgClusterEntry& c) {
  const topo::Topology& t = *ctx.topology;
  std::string hosts, ports;
  for (const auto& n : c.nodes) {
    auto hp = config::ParseHostPort(n.listen);
    hosts += (hosts.empty() ? "" : ",") + hp.host;
    ports += (ports.empty() ? "" : ",") + std::to_string(hp.port);
  }
  pg::Options o;
  o.conninfo = "host=" + hosts + " port=" + ports + " dbname=" + t.pg_database +
               " user=" + t.pg_user +
               " passfile=" + secrets::Path(ctx.run_dir, secrets::kPgPassApp) +
               " target_session_attrs=read-write application_name=millions-up";
  o.pool_size = 1;
  o.connect_timeout_s = 3;
  return o;
}

}  // namespace

Status SetUpShards(const RecipeContext& ctx, RecipeHost& host) {
  const topo::Topology& t = *ctx.topology;
  auto function = data::MakeShardFunction(t.shards.function);
  if (!function)
    return MakeError(Errc::kBadInput, "shard_function",
                     "unknown shard function " + t.shards.function);
  std::vector<std::string> names;
  for (const auto& c : t.pg_clusters)
    if (t.shards.initial == 0 || static_cast<int>(names.size()) < t.shards.initial)
      names.push_back(c.name);
  data::ShardMap first = data::NextShardMap(*function, names, t.shards.logical, nullptr);
  data::EtcdShardMapClient etcd(EtcdFor(ctx));
  Result<data::VersionedShardMap> in_force = etcd.CreateIfAbsent(first);
  for (int i = 0; i < 20 && !in_force.ok() && !host.Stopping(); ++i) {
    std::this_thread::sleep_for(milliseconds(500));
    in_force = etcd.CreateIfAbsent(first);
  }
  if (!in_force.ok()) {
    host.Event("shards", "no shard map: " + in_force.error().message);
    return in_force.error();
  }
  const data::ShardMap& map = in_force->map;
  if (map.logical() != t.shards.logical) {
    std::string why = "the shard map in etcd has " + std::to_string(map.logical()) +
                      " logical shards, the topology's [shards] logical " +
                      std::to_string(t.shards.logical) + ": it is fixed for a deployment's life";
    host.Event("shards", why);
    return MakeError(Errc::kBadInput, "shard_map_mismatch", why);
  }
  auto counts = map.Counts();
  for (const auto& c : t.pg_clusters) {
    auto at = std::find(map.clusters.begin(), map.clusters.end(), c.name);
    Result<int> written = MakeError(Errc::kUnavailable, "waiting", "waiting");
    for (int i = 0; i < 20 && !host.Stopping(); ++i) {
      written = data::PrepareShardCluster(AppOptions(ctx, c), map, c.name);
      if (written.ok()) break;
      std::this_thread::sleep_for(milliseconds(500));
    }
    if (!written.ok()) {
      host.Event("shards", "cluster " + c.name + ": " + written.error().message);
      return written.error();
    }
    if (at == map.clusters.end()) {
      // A cluster the map does not use yet: migrated, holding nothing until a reshard.
      host.Event("shards", "cluster " + c.name + " is not in shard map version " +
                               std::to_string(map.version) + ": it holds no logical shard yet");
      continue;
    }
    host.Event("shards", "cluster " + c.name + " owns " +
                             std::to_string(counts[size_t(at - map.clusters.begin())]) +
                             " logical shards (map version " + std::to_string(map.version) +
                             (*written > 0 ? ", ownership written" : "") + ")");
  }
  return Ok();
}

json::array ShardsStatus(const RecipeContext& ctx, const json::array& nodes) {
  const topo::Topology& t = *ctx.topology;
  json::array out;
  if (!t.shards.enabled) return out;
  data::EtcdOptions eo = EtcdFor(ctx);
  eo.timeout = milliseconds(1500);
  data::EtcdShardMapClient etcd(eo);
  auto map = etcd.Read();
  for (const auto& c : t.pg_clusters) {
    json::object o{{"cluster", c.name}, {"scope", c.scope}, {"primary", nullptr}};
    json::array members;
    for (const auto& n : c.nodes) members.push_back(json::string(n.name));
    o["members"] = std::move(members);
    for (const auto& row : nodes) {
      const auto& r = row.as_object();
      if (r.contains("cluster") && r.at("cluster") == c.name.c_str() && r.contains("db_role") &&
          r.at("db_role") == "primary" && r.at("state") == "running") {
        std::string name(r.at("name").as_string());
        if (name.size() > 3 && name.ends_with("-pg")) name.resize(name.size() - 3);
        o["primary"] = name;
      }
    }
    if (map.ok()) {
      auto counts = map->map.Counts();
      int64_t held = 0;
      for (size_t i = 0; i < map->map.clusters.size(); ++i)
        if (map->map.clusters[i] == c.name) held = counts[i];
      o["logical_shards"] = held;
      o["map_version"] = map->map.version;
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace millions::ctl::patroni
