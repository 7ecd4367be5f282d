// The worker recipe: our own binary's `serve worker`, one per [[worker.node]], and the nodes
// `scale worker` adds at run time (written to the effective topology, which every worker reads).
// A worker takes edit jobs from NATS and writes their results to the database; its listener
// serves only /livez, /readyz and /metrics, which the runner sums as the "worker" tier.
#include "core/config.h"
#include "ctl/recipes/recipes.h"
#include "ctl/secrets.h"

namespace millions::ctl {
namespace {

class WorkerRecipe : public Recipe {
 public:
  const char* Kind() const override { return "worker"; }
  // After the web nodes (jobs come from them), before the balancer: a worker faces no client.
  int Stage() const override { return 6; }
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override { return t.worker; }
  std::string ScaleTable() const override { return "worker.node"; }
  bool Scraped() const override { return true; }

  // The topology makes sure of NATS; a job's photo and its result live in the database.
  void Check(const topo::Topology& t, const std::string& source) const override {
    if (!t.worker.empty() && t.postgres.empty())
      throw config::ConfigError(source +
                                ": the workers need a database: the topology has no "
                                "[[postgres.node]]");
  }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    Node n = NodeFor(e, e.listen);
    n.spawn = {{ctx.self, "serve", "worker", "--config", ctx.effective, "--node", e.name},
               LogPath(ctx, e.name),
               "",
               secrets::NodeEnv(ctx.run_dir)};
    return n;
  }

  bool Ready(const Node& n, std::chrono::milliseconds timeout) const override {
    return HttpReady(n.check_host, n.check_port, "/readyz", timeout);
  }
};

}  // namespace

std::unique_ptr<Recipe> NewWorkerRecipe() { return std::make_unique<WorkerRecipe>(); }

}  // namespace millions::ctl
