// The web recipe: our own binary's `serve web`, one per [[web.node]], and the nodes `scale web`
// adds at run time (written to the effective topology, which every web node reads). The runner
// sums their /metrics as the "web" tier; with no balancer, the first one is the public URL.
#include "ctl/recipes/recipes.h"
#include "ctl/secrets.h"

namespace millions::ctl {
namespace {

class WebRecipe : public Recipe {
 public:
  const char* Kind() const override { return "web"; }
  int Stage() const override { return 5; }  // after nats: web nodes queue jobs there
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override { return t.web; }
  std::string ScaleTable() const override { return "web.node"; }
  bool Scraped() const override { return true; }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    Node n = NodeFor(e, e.listen);
    n.spawn = {{ctx.self, "serve", "web", "--config", ctx.effective, "--node", e.name},
               LogPath(ctx, e.name),
               "",
               secrets::NodeEnv(ctx.run_dir)};
    return n;
  }

  bool Ready(const Node& n, std::chrono::milliseconds timeout) const override {
    return HttpReady(n.check_host, n.check_port, "/readyz", timeout);
  }

  std::string PublicUrl(const topo::Topology& t) const override {
    return t.web.empty() ? "" : "http://" + t.web.front().listen + "/";
  }
};

}  // namespace

std::unique_ptr<Recipe> NewWebRecipe() { return std::make_unique<WebRecipe>(); }

}  // namespace millions::ctl
