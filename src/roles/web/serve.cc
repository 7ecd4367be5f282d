#include "roles/web/serve.h"

#include "app/requests.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/topology.h"
#include "roles/web/data_layer.h"
#include "roles/web/settings.h"

namespace millions::web {

int ServeWeb(const std::string& path, const std::string& node) {
  topo::Topology t = topo::Topology::Load(path);
  WebNodeConfig cfg = ReadSettings(t);
  t.Check(kTables);
  const topo::NodeEntry* me = topo::FindNode(t.web, node);
  if (!me) throw config::ConfigError(path + ": no [[web.node]] is named '" + node + "'");
  if (t.postgres.empty())
    throw config::ConfigError(path + ": a web node needs the database: the topology has no " +
                              "[[postgres.node]]");
  cfg.name = me->name;
  cfg.dc = me->dc;
  PlaceCacheByDc(t, cfg.dc, &cfg);
  cfg.listen = me->listen;
  if (!me->tls_listen.empty()) {
    cfg.tls_listen = me->tls_listen;
    std::string dir = topo::UpstreamTlsDir(t.runner.run_dir);
    cfg.tls_cert = dir + "/" + me->name + ".pem";
    cfg.tls_key = dir + "/" + me->name + ".key";
  }
  cfg.role = "web";
  // With an edge, clients get media and the UI's files from it (docs/edge.md).
  cfg.web.edge_origin = EdgeOrigin(t, cfg.dc);
  cfg.web.edge_tls_origin = EdgeTlsOrigin(t, cfg.dc);
  app::SetMediaOrigin(cfg.web.edge_origin);
  log::Init(cfg.name, "web", log::ParseLevel(cfg.log_level));
  DataLayer data = OpenDataLayer(t, t.pg_pool_size, cfg.dc);
  if (data::ShardMapWatcher* w = data.watcher.get()) {
    cfg.web.shard_map_refresh = [w](int64_t want) {
      if (w->Current()->version < want || want <= 0) w->Refresh();
      return w->Current()->version;
    };
    cfg.web.shard_map_refresh_token =
        secret::Derive(secret::FromEnv("etcd_shardmap"), secret::kShardMapRefresh);
  }
  std::unique_ptr<queue::JobQueue> queue;
  if (!cfg.nats.servers.empty()) {
    // Jobs go to NATS and the worker nodes run them: this node only publishes.
    cfg.nats.name = cfg.name;
    cfg.worker_threads = 0;
    queue = queue::OpenNatsQueue(cfg.nats);
  } else {
    pg::Options pg = PgOptions(t);
    pg.pool_size = 2;  // the queue needs few connections: one claim at a time per worker
    queue = queue::OpenPgQueue(pg, Env::Default(), std::chrono::milliseconds(cfg.queue_lease_ms));
  }
  return RunWebNode(cfg, *data.store, *queue);
}

}  // namespace millions::web
