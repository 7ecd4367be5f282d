#include "app/serve.h"

#include "app/topology.h"
#include "core/log.h"

namespace millions::app {

int ServeWeb(const std::string& path, const std::string& node) {
  Topology t = Topology::Load(path);
  const NodeEntry* me = t.FindWeb(node);
  if (!me) throw config::ConfigError(path + ": no [[web.node]] is named '" + node + "'");
  WebNodeConfig cfg = t.web_defaults;
  cfg.name = me->name;
  cfg.dc = me->dc;
  cfg.listen = me->listen;
  cfg.role = "web";
  // Each web node makes IDs with its own shard bits until sharding assigns them, so two nodes
  // never mint the same ID in the same millisecond.
  for (size_t i = 0; i < t.web.size(); ++i)
    if (t.web[i].name == node) cfg.shard = static_cast<int>(i);
  log::Init(cfg.name, "web", log::ParseLevel(cfg.log_level));
  pg::Options pg = t.PgOptions();
  auto store = data::OpenPgStore(t.Cluster());
  pg.pool_size = 2;  // the queue needs few connections: one claim at a time per worker
  auto queue = queue::OpenPgQueue(pg, Env::Default(), std::chrono::milliseconds(t.queue_lease_ms));
  return RunWebNode(cfg, *store, *queue);
}

}  // namespace millions::app
