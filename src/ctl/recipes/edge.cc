// The edge recipe: our own binary's `serve edge`, one per [[edge.node]], after the balancers
// (its origins). Readiness and metrics are on its admin listener. Before the first start it
// makes the purge token file the topology names ([edge] purge_token_file: 32 random bytes as
// hex, mode 0600), which `up` never prints: an operator reads it from the file; and, when an
// edge has tls_listen, the self-signed certificate its TLS files name if they are missing.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "core/env.h"
#include "ctl/recipes/recipes.h"
#include "roles/edge/settings.h"

namespace millions::ctl {
namespace {
namespace fs = std::filesystem;

Status EnsureToken(const std::string& path) {
  if (path.empty() || fs::exists(path)) return Ok();
  auto dir = fs::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty()) fs::create_directories(dir, ec);
  unsigned char raw[32];
  Env::Default().RandomBytes(raw, sizeof raw);
  std::string hex;
  for (unsigned char b : raw) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", b);
    hex += two;
  }
  hex += "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return MakeError(Errc::kInternal, "purge_token", "could not create " + path);
  bool ok = ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size());
  ::close(fd);
  if (!ok) return MakeError(Errc::kInternal, "purge_token", "could not write " + path);
  return Ok();
}

class EdgeRecipe : public Recipe {
 public:
  const char* Kind() const override { return "edge"; }
  int Stage() const override { return 8; }  // after the balancers, its origins
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override { return t.edge; }
  bool Scraped() const override { return true; }

  Status Prepare(const RecipeContext& ctx) const override {
    const edge::Settings s = edge::ReadSettings(*ctx.topology);
    if (Status st = EnsureToken(s.purge_token_file); !st.ok()) return st;
    bool tls = false;
    for (const auto& e : ctx.topology->edge) tls = tls || !e.tls_listen.empty();
    return tls ? EnsureCertificate(s.tls_cert, s.tls_key) : Ok();
  }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    Node n = NodeFor(e, e.admin);
    n.spawn = {{ctx.self, "serve", "edge", "--config", ctx.effective, "--node", e.name},
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
    if (t.edge.empty()) return;
    std::string token = edge::ReadSettings(t).purge_token_file;
    lines->push_back({"edge", "http://" + t.edge.front().listen + "/" +
                                  (token.empty() ? "" : "  (purge token in " + token + ")")});
    if (!t.edge.front().tls_listen.empty())
      lines->push_back({"edge https", "https://" + t.edge.front().tls_listen + "/  (self-signed: " +
                                          edge::ReadSettings(t).tls_cert + ")"});
  }
};

}  // namespace

std::unique_ptr<Recipe> NewEdgeRecipe() { return std::make_unique<EdgeRecipe>(); }

}  // namespace millions::ctl
