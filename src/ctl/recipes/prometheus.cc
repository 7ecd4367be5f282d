// The Prometheus recipe: one server (Debian's `prometheus`) when the topology has a [prometheus]
// section, started last, so that every node it scrapes is up. Its configuration and rules are
// written at every start under RUN_DIR/prometheus, its data kept there across restarts and
// `down` (bounded by the retention). The targets file (file-based discovery) is rewritten by the
// recipe's Tick when the nodes change (scale, autoscale): Prometheus reads it again without a
// restart. Ready when /-/ready answers 200. What is scraped and the rules: ctl/prometheus.h.
#include "ctl/prometheus.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>

#include "core/config.h"
#include "ctl/admin_token.h"
#include "ctl/recipes/recipes.h"
#include "ctl/secrets.h"

namespace millions::ctl {
namespace {

std::string Dir(const RecipeContext& ctx) { return ctx.run_dir + "/prometheus"; }
std::string TargetsFile(const RecipeContext& ctx) { return Dir(ctx) + "/targets/millions.json"; }

class PrometheusRecipe : public Recipe {
 public:
  const char* Kind() const override { return "prometheus"; }
  // Last: after the edges, so that its first scrapes find every node running.
  int Stage() const override { return 20; }
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override {
    auto c = ReadPrometheus(t);
    if (!c) return {};
    topo::NodeEntry e;
    e.name = "prometheus";
    e.dc = t.dcs.empty() ? "" : t.dcs.front();
    e.listen = c->listen;
    return {e};
  }
  void Check(const topo::Topology& t, const std::string& source) const override {
    if (ReadPrometheus(t) && std::system("command -v prometheus >/dev/null 2>&1") != 0)
      throw std::runtime_error(source +
                               ": [prometheus] needs Debian's prometheus package (scripts/deps.sh "
                               "installs it), or leave the section out");
  }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    PrometheusConfig c = *ReadPrometheus(*ctx.topology);
    Node n = NodeFor(e, e.listen);
    std::string dir = Dir(ctx);
    std::filesystem::create_directories(dir + "/targets");
    std::filesystem::create_directories(dir + "/data");
    std::string name = ctx.topology->name.empty() ? "millions" : ctx.topology->name;
    // The runner's admin token, for scraping its /metrics: a copy Prometheus (the engine user
    // under a root runner) may read, 0600 and its own. None (a runner without one): no job.
    std::string token_file = dir + "/runner.token";
    auto token = ReadAdminToken(ctx.run_dir);
    if (token) secrets::WriteFile(token_file, *token + "\n", ctx.engine_user);
    WriteAtomically(dir + "/prometheus.yml",
                    PrometheusYaml(c, name, dir + "/targets/*.json", dir + "/rules.yml",
                                   token ? ctx.topology->runner.admin : "", token_file));
    WriteAtomically(dir + "/rules.yml", RulesYaml(c, *ctx.topology));
    // No targets until AfterReady knows the nodes (a file left by the last run is stale).
    WriteAtomically(TargetsFile(ctx), "[]\n");
    n.spawn = {
        {"prometheus", "--config.file=" + dir + "/prometheus.yml",
         "--storage.tsdb.path=" + dir + "/data", "--storage.tsdb.retention.time=" + c.retention,
         "--web.listen-address=" + e.listen, "--log.format=json"},
        LogPath(ctx, e.name),
        "",
        {}};
    return n;
  }

  bool Ready(const Node& n, std::chrono::milliseconds timeout) const override {
    return HttpReady(n.check_host, n.check_port, "/-/ready", timeout);
  }

  Status AfterReady(const RecipeContext& ctx, RecipeHost& host) const override {
    WriteTargets(ctx, host);
    return Ok();
  }
  void Tick(const RecipeContext& ctx, RecipeHost& host) override {
    // Not ReadPrometheus: the topology's file is read by one thread at a time (scale reads it).
    if (!host.Nodes(Kind()).empty()) WriteTargets(ctx, host);
  }

  void Banner(const topo::Topology& t,
              std::vector<std::pair<std::string, std::string>>* lines) const override {
    if (auto c = ReadPrometheus(t)) lines->push_back({"prometheus", "http://" + c->listen + "/"});
  }

 private:
  // The targets file, rewritten only when the nodes changed.
  void WriteTargets(const RecipeContext& ctx, RecipeHost& host) const {
    std::vector<Node> nodes;
    for (const auto& kind : ScrapedKinds())
      for (Node& n : host.Nodes(kind)) nodes.push_back(std::move(n));
    std::string text = TargetsJson(nodes);
    std::lock_guard lock(mu_);
    if (text == written_) return;
    if (WriteAtomically(TargetsFile(ctx), text)) written_ = text;
  }

  mutable std::mutex mu_;  // Tick (supervisor) and AfterReady (start-up) may overlap
  mutable std::string written_;
};

}  // namespace

std::unique_ptr<Recipe> NewPrometheusRecipe() { return std::make_unique<PrometheusRecipe>(); }

}  // namespace millions::ctl
