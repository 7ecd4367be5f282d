// The data layer a web node or worker opens from the topology: one PostgreSQL store over the
// [[postgres.node]] cluster, or, in a sharded topology ([shards], docs/sharding.md), a sharded
// store over one store per cluster, routed by the shard map read from etcd at start and then
// followed (a ShardMapWatcher polling the map's key; the fence's wrong_shard reads it at once).
// Thread-safety: built at start-up; the store then as data/store.h. Ownership: DataLayer owns
// the store and the watcher, the store destroyed first (it reads the watcher's map).
#pragma once

#include <memory>

#include "core/topology.h"
#include "data/shard_map_etcd.h"
#include "data/store.h"

namespace millions::web {

struct DataLayer {
  std::unique_ptr<data::ShardMapWatcher> watcher;  // sharded topologies only
  std::unique_ptr<data::Store> store;              // declared last: destroyed first
};

// Opens the store with `pool_size` connections per member. Sharded: waits (up to 60 s) for the
// shard map in etcd, which `millions up` writes before it starts any web node or worker; throws
// std::runtime_error when it does not come (start-up). `local_dc`: the node's data centre, whose
// database members its replica reads prefer (docs/datacentres.md).
DataLayer OpenDataLayer(const topo::Topology& t, int pool_size, const std::string& local_dc = "");

// etcd's endpoints and the shard map's key and user (password from the run's secrets, when the
// node was started by `up`).
data::EtcdOptions ShardMapEtcdOptions(const topo::Topology& t);

}  // namespace millions::web
