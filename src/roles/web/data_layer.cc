#include "roles/web/data_layer.h"

#include <stdexcept>
#include <thread>

#include "core/log.h"
#include "core/secret.h"
#include "data/pg_cluster.h"
#include "data/sharded_store.h"
#include "roles/web/settings.h"

namespace millions::web {

data::EtcdOptions ShardMapEtcdOptions(const topo::Topology& t) {
  data::EtcdOptions o;
  for (const auto& e : t.runner.etcd) o.endpoints.push_back(e.listen);
  o.key = data::ShardMapKey(t.name);
  if (std::string pw = secret::FromEnv("etcd_shardmap"); !pw.empty()) {
    o.user = "shardmap";
    o.password = pw;
  }
  return o;
}

DataLayer OpenDataLayer(const topo::Topology& t, int pool_size, const std::string& local_dc) {
  DataLayer d;
  if (!t.shards.enabled) {
    data::ClusterOptions co = ClusterOptions(t);
    co.pool_size = pool_size;
    co.local_dc = local_dc;
    d.store = data::OpenPgStore(co);
    return d;
  }
  const data::EtcdOptions eo = ShardMapEtcdOptions(t);
  // Without the shardmap user's password an etcd with auth on refuses every read: say where
  // the password comes from, not only that the read failed.
  const std::string hint =
      eo.user.empty() ? "no etcd_shardmap password: is MILLIONS_SECRETS (the run's secrets "
                        "directory, as `millions up` sets it) in the environment?"
                      : "";
  auto client = std::make_unique<data::EtcdShardMapClient>(eo);
  Result<data::VersionedShardMap> first = client->Read();
  for (int i = 0; i < 120 && !first.ok(); ++i) {
    // Said at once and every 10 s while it waits (up to 60 s), so a node that cannot start is
    // not silent.
    if (i % 20 == 0)
      log::Warn(
          "waiting for the shard map in etcd",
          {{"key", data::ShardMapKey(t.name)}, {"error", first.error().message}, {"hint", hint}});
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    first = client->Read();
  }
  if (!first.ok())
    throw std::runtime_error("no shard map in etcd (" + data::ShardMapKey(t.name) +
                             "): " + first.error().message + (hint.empty() ? "" : "; " + hint));
  if (first->map.logical() != t.shards.logical)
    throw std::runtime_error("the shard map in etcd has " + std::to_string(first->map.logical()) +
                             " logical shards, the topology " + std::to_string(t.shards.logical));
  log::Info("shard map loaded",
            {{"version", first->map.version}, {"clusters", int64_t(first->map.clusters.size())}});
  d.watcher = std::make_unique<data::ShardMapWatcher>(std::move(client), std::move(*first),
                                                      std::chrono::milliseconds(500));
  std::map<std::string, std::unique_ptr<data::Store>> clusters;
  for (const auto& c : t.pg_clusters) {
    data::ClusterOptions co = ClusterOptions(t, c);
    co.pool_size = pool_size;
    co.local_dc = local_dc;
    clusters[c.name] = data::OpenPgStore(co);
  }
  data::ShardedStoreOptions so;
  data::ShardMapWatcher* w = d.watcher.get();
  so.map = [w] { return w->Current(); };
  so.refresh = [w] { w->Refresh(); };
  d.store = data::MakeShardedStore(std::move(so), std::move(clusters));
  return d;
}

}  // namespace millions::web
