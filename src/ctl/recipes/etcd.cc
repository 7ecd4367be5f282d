// The etcd recipe: the members of the DCS Patroni keeps its leader key in. They form one cluster
// from the start (each knows every peer), and are healthy only as a quorum, so they are started
// together and then awaited.
#include "ctl/recipes/recipes.h"

namespace millions::ctl {
namespace {

class EtcdRecipe : public Recipe {
 public:
  const char* Kind() const override { return "etcd"; }
  int Stage() const override { return 0; }
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override {
    return t.runner.etcd;
  }
  bool StartTogether() const override { return true; }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    std::string initial_cluster;
    for (const auto& m : ctx.topology->runner.etcd)
      initial_cluster += (initial_cluster.empty() ? "" : ",") + m.name + "=http://" + m.peer;
    Node n = NodeFor(e, e.listen);
    std::string dir = ctx.run_dir + "/" + e.name;
    MakeDir(dir, ctx.engine_user);
    n.spawn = {{"etcd", "--name", e.name, "--data-dir", dir + "/data", "--listen-client-urls",
                "http://" + e.listen, "--advertise-client-urls", "http://" + e.listen,
                "--listen-peer-urls", "http://" + e.peer, "--initial-advertise-peer-urls",
                "http://" + e.peer, "--initial-cluster", initial_cluster, "--initial-cluster-state",
                "new", "--initial-cluster-token", "millions"},
               LogPath(ctx, e.name),
               ctx.engine_user,
               {}};
    return n;
  }

  bool Ready(const Node& n, std::chrono::milliseconds timeout) const override {
    return HttpReady(n.check_host, n.check_port, "/health", timeout);
  }
};

}  // namespace

std::unique_ptr<Recipe> NewEtcdRecipe() { return std::make_unique<EtcdRecipe>(); }

}  // namespace millions::ctl
