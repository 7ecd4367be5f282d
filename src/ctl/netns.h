// Hosts in network namespaces ([network] mode = "netns"): `millions up` puts every node in a
// network namespace of its own, as if each were a machine, with addresses from 198.18.0.0/15
// (RFC 2544's range for test networks) instead of the loopback ones the topology writes. Each
// DC is a bridge (its private network); the balancers, edges and DNS servers also sit on a
// public bridge, where the clients' namespace is. A router namespace joins the DC bridges and
// refuses to forward anything that came from the public side, so from there only the public
// addresses answer. The machine itself (the runner: readiness, status, metrics) reaches every
// address through one link into the router, as an operator's bastion does. Nothing routes off
// the machine: no namespace has a default route.
//
// Every run takes a slot (0..63: a /21 of 198.18.0.0/15 and the name prefix mn<slot>), free
// among the runs on this machine, so parallel runs never collide. What was made is recorded in
// RUN_DIR/netns.json, so `down` (or the next `up`) removes it also after a crash.
//
// Thread-safety: functions; Setup and Teardown run at start-up and shut-down only (they take a
// machine-wide lock while they choose a slot). Ownership: Network is a value.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/topology.h"

namespace millions::ctl::netns {

// One node's host: its namespace and addresses.
struct Host {
  std::string node, ns;
  int dc_index = 0;
  int index = 0;     // 1..: its veth's number in the router
  std::string priv;  // its address on its DC's bridge
  std::string pub;   // on the public bridge (balancers, edges, DNS servers), else empty
};

struct Network {
  bool active = false;  // false: loopback, nothing made
  int slot = 0;
  std::string prefix;  // "mn<slot>": every namespace's name starts "mn<slot>-"
  std::string cidr;    // the slot's /21
  std::string router_ns, public_ns, root_link;
  std::string client;                           // the public namespace's own address
  std::vector<std::string> dc_gateways;         // the router's address on each DC bridge
  std::vector<Host> hosts;                      // in start order of the roles
  std::map<std::string, std::string> rewrite;   // "old host:port" -> "new host:port"
  std::vector<std::string> Namespaces() const;  // every namespace it makes
};

// The address plan for `t` in `slot`: a host per node (every role's nodes and the etcd
// members), each address of each node moved to its host (public roles' listen and tls_listen
// to the public bridge, every other address to the private one), and the rewrite map. Pure.
Network Plan(const topo::Topology& t, int slot);
// Moves `t`'s node addresses as `net` says.
void Apply(const Network& net, topo::Topology* t);
// `text` (a topology file) with every quoted address of the map replaced.
std::string RewriteText(const Network& net, std::string text);
// "/run/netns/NAME" of the node's namespace, or "" when it has none.
std::string NamespacePath(const Network& net, const std::string& node);

// Whether namespaces can be made here (root, iproute2, the kernel's support); *why when not.
bool Supported(std::string* why);
// Plans `t` in a free slot (the one recorded in run_dir/netns.json when its namespaces still
// exist: a runner that died left nodes running in them), makes the namespaces, bridges, veth
// pairs, addresses and routes, records them, and rewrites `t`. Errors name what failed.
Result<Network> Setup(topo::Topology* t, const std::string& run_dir);
// Removes what run_dir/netns.json names (processes still in those namespaces are killed) and
// the record. True when there was a record.
bool Teardown(const std::string& run_dir);

}  // namespace millions::ctl::netns
