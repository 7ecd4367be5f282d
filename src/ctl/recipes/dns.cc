// The DNS recipe: our own binary's `serve dns`, one per [[dns.node]], after the balancers (the
// addresses it answers with, whose health it checks from its first second). Readiness is on its
// admin listener. `up`'s banner names the first server and the zone, with a query to try.
#include "core/config.h"
#include "ctl/recipes/recipes.h"

namespace millions::ctl {
namespace {

class DnsRecipe : public Recipe {
 public:
  const char* Kind() const override { return "dns"; }
  int Stage() const override { return 9; }  // after the balancers (7) and edges (8)
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override { return t.dns; }

  void Check(const topo::Topology& t, const std::string& source) const override {
    if (!t.dns.empty() && t.lb.empty())
      throw config::ConfigError(source + ": the DNS servers answer with the balancers: the " +
                                "topology has no [[lb.node]]");
  }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    Node n = NodeFor(e, e.admin);
    n.spawn = {{ctx.self, "serve", "dns", "--config", ctx.effective, "--node", e.name},
               LogPath(ctx, e.name),
               "",
               {}};
    return n;
  }

  bool Ready(const Node& n, std::chrono::milliseconds timeout) const override {
    return HttpReady(n.check_host, n.check_port, "/readyz", timeout);
  }

  void Banner(const topo::Topology& t,
              std::vector<std::pair<std::string, std::string>>* lines) const override {
    if (t.dns.empty()) return;
    auto hp = config::ParseHostPort(t.dns.front().listen);
    const std::string& zone = t.dns_zone;
    lines->push_back({"dns", t.dns.front().listen + "  (zone " + zone + ": dig @" + hp.host +
                                 " -p " + std::to_string(hp.port) + " www." + zone + ")"});
  }
};

}  // namespace

std::unique_ptr<Recipe> NewDnsRecipe() { return std::make_unique<DnsRecipe>(); }

}  // namespace millions::ctl
