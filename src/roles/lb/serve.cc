#include "roles/lb/serve.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/topology.h"
#include "roles/lb/proxy.h"
#include "roles/lb/settings.h"

namespace millions::lb {

namespace {

LbConfig Build(const std::string& path, const std::string& node) {
  topo::Topology t = topo::Topology::Load(path);
  LbConfig c;
  c.settings = ReadSettings(t);
  t.Check(kTables);
  const topo::NodeEntry* me = topo::FindNode(t.lb, node);
  if (!me) throw config::ConfigError(path + ": no [[lb.node]] is named '" + node + "'");
  c.name = me->name;
  c.listen = me->listen;
  c.admin = me->admin;
  c.tls_listen = me->tls_listen;
  // Under upstream_tls the balancer dials each web node's TLS listener (ReadSettings checked
  // that every node has one).
  for (const auto& w : t.web)
    c.backends.push_back({w.name, c.settings.upstream_tls ? w.tls_listen : w.listen, 1,
                          std::make_shared<BackendStats>()});
  // Under `millions up` the runner knows which web nodes run right now (scaling, deaths).
  if (const char* runner = std::getenv("MILLIONS_RUNNER_ADMIN")) c.runner_admin = runner;
  // Its admin token, from the file the runner names (never in the environment itself).
  if (const char* file = std::getenv("MILLIONS_RUNNER_TOKEN_FILE")) {
    std::ifstream in(file);
    std::getline(in, c.runner_token);
  }
  return c;
}

}  // namespace

int Serve(const std::string& path, const std::string& node) {
  LbConfig c = Build(path, node);
  c.reload = [path, node]() -> std::optional<LbConfig> {
    try {
      return Build(path, node);
    } catch (const std::exception& e) {
      fprintf(stderr, "%s\n", e.what());
      return std::nullopt;
    }
  };
  return Run(c);
}

}  // namespace millions::lb
