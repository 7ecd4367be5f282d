// The web recipe: our own binary's `serve web`, one per [[web.node]], and the nodes `scale web`
// adds at run time (written to the effective topology, which every web node reads). The runner
// sums their /metrics as the "web" tier; with no balancer, the first one is the public URL.
// A node with a tls_listen (under [lb] upstream_tls) gets its certificate from the run's CA
// (upstream_tls.h), and is ready when both listeners answer, the TLS one with that certificate
// verified as the balancers verify it.
#include <cstdio>

#include "core/config.h"
#include "core/http_client.h"
#include "core/tls.h"
#include "ctl/recipes/recipes.h"
#include "ctl/secrets.h"
#include "ctl/upstream_tls.h"

namespace millions::ctl {
namespace {

// A web node's CA file for its readiness check over TLS.
struct WebExtra : NodeExtra {
  std::string ca;
};

bool TlsReady(const std::string& address, const std::string& ca,
              std::chrono::milliseconds timeout) {
  try {
    auto hp = config::ParseHostPort(address);
    http::FetchRequest r;
    r.host = hp.host;
    r.port = hp.port;
    r.target = "/readyz";
    r.timeout = timeout;
    r.tls = tls::ClientContext(ca);
    auto res = http::Fetch(r);
    return res.ok() && res->status == 200;
  } catch (const std::exception&) {
    return false;  // no CA yet
  }
}

class WebRecipe : public Recipe {
 public:
  const char* Kind() const override { return "web"; }
  int Stage() const override { return 5; }  // after nats: web nodes queue jobs there
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override { return t.web; }
  std::string ScaleTable() const override { return "web.node"; }
  bool Scraped() const override { return true; }

  Status Prepare(const RecipeContext& ctx) const override {
    for (const auto& e : ctx.topology->web)
      if (!e.tls_listen.empty()) return upstream_tls::EnsureCa(ctx.run_dir);
    return Ok();
  }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    Node n = NodeFor(e, e.listen);
    if (!e.tls_listen.empty()) {
      // Nodes added by `scale` come here too. A failure leaves the node without its files: it
      // will not start, and its log says why.
      std::string host = config::ParseHostPort(e.tls_listen).host;
      Status st = upstream_tls::EnsureCa(ctx.run_dir);
      if (st.ok()) st = upstream_tls::EnsureNode(ctx.run_dir, e.name, host);
      if (!st.ok())
        fprintf(stderr, "millions up: %s: no TLS certificate: %s\n", e.name.c_str(),
                st.error().message.c_str());
      auto extra = std::make_shared<WebExtra>();
      extra->ca = upstream_tls::CaPath(ctx.run_dir);
      n.extra = extra;
    }
    n.spawn = {{ctx.self, "serve", "web", "--config", ctx.effective, "--node", e.name},
               LogPath(ctx, e.name),
               "",
               secrets::NodeEnv(ctx.run_dir)};
    return n;
  }

  bool Ready(const Node& n, std::chrono::milliseconds timeout) const override {
    if (!HttpReady(n.check_host, n.check_port, "/readyz", timeout)) return false;
    auto* extra = dynamic_cast<const WebExtra*>(n.extra.get());
    return n.tls_address.empty() || !extra || TlsReady(n.tls_address, extra->ca, timeout);
  }

  std::string PublicUrl(const topo::Topology& t) const override {
    return t.web.empty() ? "" : "http://" + t.web.front().listen + "/";
  }
};

}  // namespace

std::unique_ptr<Recipe> NewWebRecipe() { return std::make_unique<WebRecipe>(); }

}  // namespace millions::ctl
