// The etcd recipe: the members of the DCS Patroni keeps its leader key in. They form one cluster
// from the start (each knows every peer), and are healthy only as a quorum, so they are started
// together and then awaited. Once they are, client authentication is turned on through etcd's
// JSON gateway (/v3/auth/*, no etcdctl needed): a root user, a `patroni` user that may read and
// write Patroni's keys only, and a `shardmap` user for the shard map's keys; on later starts the
// users' passwords are set again from the run's secrets (docs/credentials.md).
// Blocking I/O with short timeouts: the runner's own threads call these, never an event loop.
#include <thread>

#include "core/config.h"
#include "core/http_client.h"
#include "ctl/recipes/recipes.h"
#include "ctl/secrets.h"

namespace millions::ctl {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

// One member's JSON gateway, with the root user's token once there is one.
class AuthApi {
 public:
  AuthApi(std::string host, int port) : host_(std::move(host)), port_(port) {}

  // POST /v3/PATH: the status (0 when it did not answer) and the body. An error's body names
  // the error, never the request's password.
  std::pair<int, std::string> Post(const std::string& path, const json::object& body) {
    http::FetchRequest r;
    r.method = "POST";
    r.host = host_;
    r.port = port_;
    r.target = "/v3/" + path;
    r.body = json::serialize(body);
    r.content_type = "application/json";
    r.timeout = milliseconds(5000);
    if (!token_.empty()) r.headers.emplace_back("Authorization", token_);
    auto res = http::Fetch(r);
    if (!res.ok()) return {0, res.error().message};
    return {res->status, res->body};
  }

  // Logs in as `user`: true with a token; false with why (auth off: "not enabled").
  bool Authenticate(const std::string& user, const std::string& password, std::string* why) {
    auto [status, body] = Post("auth/authenticate", {{"name", user}, {"password", password}});
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (status == 200 && !ec && v.is_object() && v.as_object().contains("token")) {
      token_ = std::string(v.at("token").as_string());
      return true;
    }
    *why = body.substr(0, 200);
    return false;
  }

  // An administrative call that may find its work done already ("already exists").
  Status Call(const std::string& path, const json::object& body) {
    auto [status, text] = Post(path, body);
    if (status == 200 || text.find("already") != std::string::npos) return Ok();
    return MakeError(Errc::kUnavailable, "etcd_auth",
                     "etcd " + path + ": " + std::to_string(status) + " " + text.substr(0, 200));
  }

 private:
  std::string host_;
  int port_;
  std::string token_;
};

// A user with its password (set again when it exists: a rotated secret takes effect) and one
// role that may read and write the keys under `prefix`.
Status EnsureUser(AuthApi& api, const std::string& user, const std::string& password,
                  const std::string& prefix) {
  if (Status st = api.Call("auth/role/add", {{"name", user}}); !st.ok()) return st;
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);  // the range of every key under the prefix
  json::object perm{{"permType", "READWRITE"},
                    {"key", secrets::Base64(prefix)},
                    {"range_end", secrets::Base64(end)}};
  if (Status st = api.Call("auth/role/grant", {{"name", user}, {"perm", perm}}); !st.ok())
    return st;
  if (Status st = api.Call("auth/user/add", {{"name", user}, {"password", password}}); !st.ok())
    return st;
  if (Status st = api.Call("auth/user/changepw", {{"name", user}, {"password", password}});
      !st.ok())
    return st;
  return api.Call("auth/user/grant", {{"user", user}, {"role", user}});
}

// Turns client authentication on (first start) or brings the users to the run's secrets.
Status EnableAuth(const RecipeContext& ctx) {
  const std::string root = secrets::Get(ctx.run_dir, secrets::kEtcdRoot);
  Status last = MakeError(Errc::kUnavailable, "etcd_auth", "no etcd member answers");
  for (const auto& m : ctx.topology->runner.etcd) {
    auto hp = config::ParseHostPort(m.listen);
    AuthApi api(hp.host, hp.port);
    std::string why;
    bool enabled = api.Authenticate("root", root, &why);
    if (!enabled && why.find("not enabled") == std::string::npos) {
      last = MakeError(Errc::kUnavailable, "etcd_auth",
                       "etcd " + m.name + " refused the run's root user: " + why);
      continue;
    }
    if (!enabled) {
      if (Status st = api.Call("auth/user/add", {{"name", "root"}, {"password", root}}); !st.ok())
        return st;
      if (Status st = api.Call("auth/role/add", {{"name", "root"}}); !st.ok()) return st;
      if (Status st = api.Call("auth/user/grant", {{"user", "root"}, {"role", "root"}}); !st.ok())
        return st;
    }
    // Patroni's keys live under its namespace (/service/ by default, then the scope).
    if (Status st = EnsureUser(api, "patroni", secrets::Get(ctx.run_dir, secrets::kEtcdPatroni),
                               "/service/");
        !st.ok())
      return st;
    if (Status st = EnsureUser(api, "shardmap", secrets::Get(ctx.run_dir, secrets::kEtcdShardMap),
                               "/millions/");
        !st.ok())
      return st;
    return enabled ? Ok() : api.Call("auth/enable", {});
  }
  return last;
}

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

  // /health answers without a user, auth on or off.
  bool Ready(const Node& n, std::chrono::milliseconds timeout) const override {
    return HttpReady(n.check_host, n.check_port, "/health", timeout);
  }

  // Over several hosts (--host) each host's runner does this once its members are ready, maybe
  // at once: a runner that finds authentication turned on halfway (its next call refused) tries
  // again, as the root user this time.
  Status AfterReady(const RecipeContext& ctx, RecipeHost& host) const override {
    Status st = EnableAuth(ctx);
    for (int i = 0; i < 20 && !st.ok() && !host.Stopping(); ++i) {
      std::this_thread::sleep_for(milliseconds(500));
      st = EnableAuth(ctx);
    }
    if (!st.ok()) host.Event("etcd", "client authentication: " + st.error().message);
    return st;
  }
};

}  // namespace

std::unique_ptr<Recipe> NewEtcdRecipe() { return std::make_unique<EtcdRecipe>(); }

}  // namespace millions::ctl
