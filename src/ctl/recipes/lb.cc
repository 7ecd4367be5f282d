// The balancer recipe: our own binary's `serve lb`, one per [[lb.node]], told the runner's admin
// address (it follows web membership from there). Readiness and metrics are on its admin
// listener; it is the public URL, and its HTTPS listener gets a self-signed certificate for
// local use when the topology names one that does not exist yet.
#include <cstdlib>
#include <filesystem>

#include "ctl/recipes/recipes.h"
#include "roles/lb/settings.h"

namespace millions::ctl {
namespace fs = std::filesystem;

// A local topology names a certificate that may not exist yet: make a self-signed pair for
// local use (clients will need -k or the file as their CA).
Status EnsureCertificate(const std::string& cert, const std::string& key) {
  if (cert.empty() || (fs::exists(cert) && fs::exists(key))) return Ok();
  fs::create_directories(fs::path(cert).parent_path().empty() ? "." : fs::path(cert).parent_path());
  fs::create_directories(fs::path(key).parent_path().empty() ? "." : fs::path(key).parent_path());
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout '" +
      key + "' -out '" + cert + "' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return MakeError(Errc::kInternal, "openssl", "could not make a self-signed certificate");
  return Ok();
}

namespace {

class LbRecipe : public Recipe {
 public:
  const char* Kind() const override { return "lb"; }
  int Stage() const override { return 7; }  // last: its backends are up when clients come
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override { return t.lb; }
  bool Scraped() const override { return true; }

  Status Prepare(const RecipeContext& ctx) const override {
    const lb::Settings s = lb::ReadSettings(*ctx.topology);  // `up` has checked them
    return EnsureCertificate(s.tls_cert, s.tls_key);
  }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    Node n = NodeFor(e, e.admin);
    n.spawn = {{ctx.self, "serve", "lb", "--config", ctx.effective, "--node", e.name},
               LogPath(ctx, e.name),
               "",
               {"MILLIONS_RUNNER_ADMIN=" + ctx.topology->runner.admin,
                // The file, not the token: a secret in the environment shows in /proc.
                "MILLIONS_RUNNER_TOKEN_FILE=" + ctx.run_dir + "/admin.token"}};
    return n;
  }

  bool Ready(const Node& n, std::chrono::milliseconds timeout) const override {
    return HttpReady(n.check_host, n.check_port, "/readyz", timeout);
  }

  std::string PublicUrl(const topo::Topology& t) const override {
    return t.lb.empty() ? "" : "http://" + t.lb.front().listen + "/";
  }

  void Banner(const topo::Topology& t,
              std::vector<std::pair<std::string, std::string>>* lines) const override {
    if (!t.lb.empty() && !t.lb.front().tls_listen.empty())
      lines->push_back({"https", "https://" + t.lb.front().tls_listen +
                                     "/  (self-signed: " + lb::ReadSettings(t).tls_cert + ")"});
  }
};

}  // namespace

std::unique_ptr<Recipe> NewLbRecipe() { return std::make_unique<LbRecipe>(); }

}  // namespace millions::ctl
