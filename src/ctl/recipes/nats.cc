// The NATS recipe: the JetStream servers the job queue lives on, one per [[nats.node]]. Each runs
// from a configuration file written at every start (run/NAME/nats.conf), because only the file
// can bind the monitor to its own host; JetStream keeps its streams under run/NAME, kept across
// restarts and `down` as the other engines' data is. With more than one node they form one
// cluster ("millions", routes to every other member), healthy only with a quorum, so they are
// started together and then awaited. Ready when the monitor's /healthz answers 200 (JetStream
// on and, in a cluster, a meta leader known); status adds the stream totals from /jsz.
// Blocking I/O with short timeouts: the runner's own threads call these, never an event loop.
#include <filesystem>
#include <fstream>

#include "core/http_client.h"
#include "ctl/recipes/recipes.h"
#include "ctl/secrets.h"

namespace millions::ctl {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

// The passwords in a server's configuration (secrets.h).
struct Credentials {
  std::string web, worker, admin, route;
};

Credentials ReadCredentials(const RecipeContext& ctx) {
  return {secrets::Get(ctx.run_dir, "nats_web"), secrets::Get(ctx.run_dir, "nats_worker"),
          secrets::Get(ctx.run_dir, "nats_admin"), secrets::Get(ctx.run_dir, "nats_route")};
}

// Who may do what (docs/credentials.md). Clients answer on _INBOX.> (JetStream's API replies
// and publish acknowledgements). The web nodes publish jobs and hear that they are done; they
// may not take (CONSUMER.MSG.NEXT) or acknowledge one. The workers take, acknowledge, dead-letter
// and announce. Neither may delete or purge a stream or a consumer; `admin` (an operator) may.
std::string Authorization(const Credentials& c) {
  const std::string no_destroy =
      "\"$JS.API.STREAM.DELETE.>\", \"$JS.API.STREAM.PURGE.>\", "
      "\"$JS.API.STREAM.MSG.DELETE.>\", \"$JS.API.CONSUMER.DELETE.>\"";
  const std::string hear = "\"_INBOX.>\", \"millions.jobs.done.>\", \"millions.fanout.done.>\"";
  std::string s = "authorization {\n  users = [\n";
  s += "    {user: \"web\", password: \"" + c.web +
       "\", permissions: {\n"
       "      publish: {allow: [\"millions.jobs.edit.>\", \"millions.fanout.job.>\", "
       "\"$JS.API.>\"],\n"
       "                deny: [" +
       no_destroy + ", \"$JS.API.CONSUMER.MSG.NEXT.>\", \"$JS.ACK.>\"]}\n" +
       "      subscribe: {allow: [" + hear + "]}}}\n";
  s += "    {user: \"worker\", password: \"" + c.worker +
       "\", permissions: {\n"
       "      publish: {allow: [\"millions.jobs.>\", \"millions.dead.>\", \"millions.fanout.>\", "
       "\"$JS.API.>\", \"$JS.ACK.>\"],\n"
       "                deny: [" +
       no_destroy + "]}\n" + "      subscribe: {allow: [" + hear + "]}}}\n";
  s += "    {user: \"admin\", password: \"" + c.admin + "\"}\n  ]\n}\n";
  return s;
}

// nats-server's configuration for node `e`, its JetStream data under `dir`.
std::string NatsConfig(const topo::Topology& t, const topo::NodeEntry& e, const std::string& dir,
                       const Credentials& cred) {
  std::string from = t.path.empty() ? "the topology" : std::filesystem::absolute(t.path).string();
  std::string s = "# Written by `millions up` from " + from + " at every start.\n";
  s += "server_name: " + Quoted(e.name) + "\n";
  s += "listen: " + Quoted(e.listen) + "\n";
  s += "http: " + Quoted(e.admin) + "\n";
  s += "jetstream {\n  store_dir: " + Quoted(dir) + "\n}\n";
  s += Authorization(cred);
  if (t.nats.size() > 1) {
    // Routes authenticate too: a server that does not know the route's password cannot join.
    s += "cluster {\n  name: \"millions\"\n  listen: " + Quoted(e.peer) +
         "\n  authorization {\n    user: \"route\"\n    password: \"" + cred.route +
         "\"\n  }\n  routes: [\n";
    for (const auto& other : t.nats)
      if (other.name != e.name)
        s += "    " + Quoted("nats://route:" + cred.route + "@" + other.peer) + "\n";
    s += "  ]\n}\n";
  }
  return s;
}

// The monitor's JetStream totals for the node's status row; nothing when it does not answer.
void AddJetStreamInfo(const Node& n, json::object* row) {
  http::FetchRequest r;
  r.host = n.check_host;
  r.port = n.check_port;
  r.target = "/jsz";
  r.timeout = milliseconds(300);
  auto res = http::Fetch(r);
  if (!res.ok() || res->status != 200) return;
  boost::system::error_code ec;
  auto v = json::parse(res->body, ec);
  if (ec || !v.is_object()) return;
  const auto& o = v.as_object();
  auto copy = [&](const char* from, const char* to) {
    if (auto* f = o.if_contains(from); f && f->is_number()) (*row)[to] = *f;
  };
  copy("streams", "streams");
  copy("consumers", "consumers");
  copy("messages", "messages");
  copy("bytes", "stored_bytes");
  if (auto* meta = o.if_contains("meta_cluster"); meta && meta->is_object())
    if (auto* leader = meta->as_object().if_contains("leader"); leader && leader->is_string())
      (*row)["meta_leader"] = *leader;
}

class NatsRecipe : public Recipe {
 public:
  const char* Kind() const override { return "nats"; }
  // After the data and cache tiers, before the web nodes and workers that connect to it.
  int Stage() const override { return 4; }
  std::vector<topo::NodeEntry> Entries(const topo::Topology& t) const override { return t.nats; }
  bool StartTogether() const override { return true; }

  Node Make(const topo::NodeEntry& e, const RecipeContext& ctx) const override {
    Node n = NodeFor(e, e.admin);
    std::string dir = ctx.run_dir + "/" + e.name;
    MakeDir(dir, ctx.engine_user);
    // Passwords inside: readable by the engine's user only.
    secrets::WriteFile(dir + "/nats.conf", NatsConfig(*ctx.topology, e, dir, ReadCredentials(ctx)),
                       ctx.engine_user);
    n.spawn = {
        {"nats-server", "-c", dir + "/nats.conf"}, LogPath(ctx, e.name), ctx.engine_user, {}};
    return n;
  }

  bool Ready(const Node& n, milliseconds timeout) const override {
    return HttpReady(n.check_host, n.check_port, "/healthz", timeout);
  }

  StatusWriter StatusRows(const std::vector<Node>&) const override {
    return [](const Node& n, json::object row, json::array* out) {
      if (n.pid > 0) AddJetStreamInfo(n, &row);
      out->push_back(std::move(row));
    };
  }
};

}  // namespace

std::unique_ptr<Recipe> NewNatsRecipe() { return std::make_unique<NatsRecipe>(); }

}  // namespace millions::ctl
