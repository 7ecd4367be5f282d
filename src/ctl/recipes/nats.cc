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

namespace millions::ctl {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

// nats-server's configuration for node `e`, its JetStream data under `dir`.
std::string NatsConfig(const topo::Topology& t, const topo::NodeEntry& e, const std::string& dir) {
  std::string from = t.path.empty() ? "the topology" : std::filesystem::absolute(t.path).string();
  std::string s = "# Written by `millions up` from " + from + " at every start.\n";
  s += "server_name: " + Quoted(e.name) + "\n";
  s += "listen: " + Quoted(e.listen) + "\n";
  s += "http: " + Quoted(e.admin) + "\n";
  s += "jetstream {\n  store_dir: " + Quoted(dir) + "\n}\n";
  if (t.nats.size() > 1) {
    s += "cluster {\n  name: \"millions\"\n  listen: " + Quoted(e.peer) + "\n  routes: [\n";
    for (const auto& other : t.nats)
      if (other.name != e.name) s += "    " + Quoted("nats://" + other.peer) + "\n";
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
    std::ofstream(dir + "/nats.conf") << NatsConfig(*ctx.topology, e, dir);
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
