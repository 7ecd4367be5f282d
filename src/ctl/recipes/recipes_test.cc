// The recipe table and what each recipe builds from a topology, without starting anything.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/config.h"
#include "ctl/recipe.h"
#include "ctl/secrets.h"
#include "roles/dns/settings.h"
#include "roles/edge/settings.h"

namespace millions::ctl {
namespace {

topo::NodeEntry Entry(std::string name, std::string listen) {
  topo::NodeEntry e;
  e.name = std::move(name);
  e.dc = "dc1";
  e.listen = std::move(listen);
  return e;
}

struct Fixture : ::testing::Test {
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() / ("recipes_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto etcd = Entry("etcd1", "127.0.0.1:2379");
    etcd.peer = "127.0.0.1:2380";
    t.runner.etcd = {etcd};
    auto pg = Entry("pg1", "127.0.0.1:5432");
    pg.rest = "127.0.0.1:8008";
    t.postgres = {pg};
    t.redis = {Entry("redis1", "127.0.0.1:6379")};
    t.web = {Entry("web1", "127.0.0.1:8080")};
    auto lb = Entry("lb1", "127.0.0.1:8000");
    lb.admin = "127.0.0.1:8001";
    t.lb = {lb};
    auto nats = Entry("nats1", "127.0.0.1:24222");
    nats.admin = "127.0.0.1:28222";
    t.nats = {nats};
    t.worker = {Entry("worker1", "127.0.2.1:8090")};
    t.redis_settings.maxmemory = "32mb";
    ctx = {&t, dir.string(), "/bin/millions", dir.string() + "/topology.toml", ""};
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  const Recipe& Of(const std::string& kind) {
    for (const auto& r : table)
      if (kind == r->Kind()) return *r;
    throw std::runtime_error("no recipe " + kind);
  }
  Node Make(const std::string& kind) {
    const Recipe& r = Of(kind);
    return r.Make(r.Entries(t).front(), ctx);
  }

  std::filesystem::path dir;
  topo::Topology t;
  RecipeContext ctx;
  std::vector<std::unique_ptr<Recipe>> table = MakeRecipes();
};

TEST_F(Fixture, TableListsEveryKindOnceInStageOrder) {
  std::vector<std::string> kinds;
  for (const auto& r : table) kinds.push_back(r->Kind());
  EXPECT_EQ(kinds, (std::vector<std::string>{"etcd", "patroni", "redis", "timeline", "nats", "web",
                                             "worker", "lb", "edge", "dns", "prometheus"}));
  EXPECT_TRUE(std::is_sorted(table.begin(), table.end(),
                             [](auto& a, auto& b) { return a->Stage() < b->Stage(); }));
  std::set<int> stages;
  for (const auto& r : table) stages.insert(r->Stage());
  EXPECT_EQ(stages.size(), table.size()) << "each kind is a stage of its own";
}

TEST_F(Fixture, EtcdMembersKnowEveryPeerAndStartTogether) {
  Node n = Make("etcd");
  EXPECT_TRUE(Of("etcd").StartTogether());
  auto& a = n.spawn.argv;
  auto at = std::find(a.begin(), a.end(), "--initial-cluster");
  ASSERT_NE(at, a.end());
  EXPECT_EQ(*(at + 1), "etcd1=http://127.0.0.1:2380");
  EXPECT_EQ(n.check_port, 2379);
  EXPECT_EQ(n.spawn.log_path, dir.string() + "/logs/etcd1.log");
}

TEST_F(Fixture, PatroniIsCheckedAtItsRestApiAndKeepsItsDataDir) {
  Node n = Make("patroni");
  EXPECT_EQ(n.check_port, 8008);
  EXPECT_EQ(n.address, "127.0.0.1:5432");
  ASSERT_TRUE(n.extra) << "the data dir lives in the recipe's node state";
  EXPECT_TRUE(std::filesystem::exists(dir / "pg1" / "patroni.yml"));
  EXPECT_EQ(n.spawn.argv,
            (std::vector<std::string>{"patroni", (dir / "pg1/patroni.yml").string()}));
  // Chaos: a kill takes the host, anything else Patroni alone; --part postgres spares Patroni.
  const Recipe& r = Of("patroni");
  EXPECT_EQ(r.DefaultPart("kill"), "host");
  EXPECT_EQ(r.DefaultPart("stop"), "patroni");
  auto parts = r.Parts();
  auto pg = std::find_if(parts.begin(), parts.end(), [](auto& p) { return p.name == "postgres"; });
  ASSERT_NE(pg, parts.end());
  EXPECT_FALSE(pg->process);
  EXPECT_TRUE(pg->companion);
  // No PostgreSQL runs under this test: nothing to signal.
  EXPECT_FALSE(r.CompanionRunning(n));
  EXPECT_FALSE(r.SignalCompanion(n, SIGCONT));
}

TEST_F(Fixture, RedisKeepsNothingOnDiskWithTheTopologysMemory) {
  Node n = Make("redis");
  auto& a = n.spawn.argv;
  auto mem = std::find(a.begin(), a.end(), "--maxmemory");
  ASSERT_NE(mem, a.end());
  EXPECT_EQ(*(mem + 1), "32mb");
  EXPECT_NE(std::find(a.begin(), a.end(), "--appendonly"), a.end());
}

TEST_F(Fixture, WebScalesAndLbFacesClients) {
  Node web = Make("web");
  EXPECT_EQ(web.spawn.argv.front(), "/bin/millions");
  EXPECT_EQ(Of("web").ScaleTable(), "web.node");
  EXPECT_EQ(Of("lb").ScaleTable(), "");
  Node lb = Make("lb");
  EXPECT_EQ(lb.check_port, 8001) << "a balancer is checked on its admin listener";
  EXPECT_EQ(lb.spawn.env, (std::vector<std::string>{
                              "MILLIONS_RUNNER_ADMIN=127.0.0.1:7070",
                              "MILLIONS_RUNNER_TOKEN_FILE=" + ctx.run_dir + "/admin.token"}))
      << "the balancer is handed the admin token's file, never the token";
  EXPECT_EQ(Of("lb").PublicUrl(t), "http://127.0.0.1:8000/");
  EXPECT_TRUE(Of("web").Scraped() && Of("lb").Scraped() && !Of("redis").Scraped());
  EXPECT_TRUE(Of("worker").Scraped() && !Of("nats").Scraped()) << "nats-server has no /metrics";
  for (const auto& r : table)
    EXPECT_TRUE(r->Parts().empty() || std::string(r->Kind()) == "patroni");
}

std::string Slurp(const std::filesystem::path& p) {
  std::stringstream s;
  s << std::ifstream(p).rdbuf();
  return s.str();
}

// Web nodes queue jobs on NATS and workers take them from it: both start once it is ready (a
// lower stage), and stop before it.
TEST_F(Fixture, NatsIsReadyBeforeWebNodesAndWorkers) {
  EXPECT_LT(Of("patroni").Stage(), Of("nats").Stage());
  EXPECT_LT(Of("nats").Stage(), Of("web").Stage());
  EXPECT_LT(Of("nats").Stage(), Of("worker").Stage());
  EXPECT_LT(Of("worker").Stage(), Of("lb").Stage());
}

TEST_F(Fixture, NatsRunsFromAConfigFileWithItsMonitorOnTheAdminAddress) {
  ctx.engine_user = "postgres";  // as under a root runner: an engine, run as the engine user
  Node n = Make("nats");
  const auto conf = dir / "nats1" / "nats.conf";
  EXPECT_EQ(n.spawn.argv, (std::vector<std::string>{"nats-server", "-c", conf.string()}));
  EXPECT_EQ(n.spawn.user, "postgres");
  EXPECT_EQ(n.spawn.log_path, dir.string() + "/logs/nats1.log");
  EXPECT_EQ(n.address, "127.0.0.1:24222");
  EXPECT_EQ(n.check_port, 28222) << "readiness and status at the monitor";
  EXPECT_TRUE(Of("nats").StartTogether());
  std::string c = Slurp(conf);
  EXPECT_NE(c.find("server_name: \"nats1\"\n"), std::string::npos) << c;
  EXPECT_NE(c.find("listen: \"127.0.0.1:24222\"\n"), std::string::npos) << c;
  EXPECT_NE(c.find("http: \"127.0.0.1:28222\"\n"), std::string::npos) << c;
  EXPECT_NE(c.find("jetstream {\n  store_dir: \"" + (dir / "nats1").string() + "\"\n}"),
            std::string::npos)
      << c;
  EXPECT_EQ(c.find("cluster"), std::string::npos) << "one server is no cluster: " << c;
}

TEST_F(Fixture, NatsClusterMembersRouteToEveryOtherPeer) {
  t.nats.clear();
  for (int i = 1; i <= 3; ++i) {
    auto e = Entry("nats" + std::to_string(i), "127.0.0.1:2422" + std::to_string(i));
    e.admin = "127.0.0.1:2822" + std::to_string(i);
    e.peer = "127.0.0.1:2624" + std::to_string(i);
    t.nats.push_back(e);
  }
  const Recipe& r = Of("nats");
  r.Make(t.nats[1], ctx);
  std::string c = Slurp(dir / "nats2" / "nats.conf");
  // Routes authenticate with the run's route password (secrets.h).
  const std::string pw = secrets::Get(ctx.run_dir, "nats_route");
  EXPECT_NE(c.find("cluster {\n  name: \"millions\"\n  listen: \"127.0.0.1:26242\"\n"
                   "  authorization {\n    user: \"route\"\n    password: \"" +
                   pw + "\"\n  }\n  routes: [\n    \"nats://route:" + pw +
                   "@127.0.0.1:26241\"\n    \"nats://route:" + pw + "@127.0.0.1:26243\"\n  ]\n}\n"),
            std::string::npos)
      << c;
  EXPECT_EQ(c.find("@127.0.0.1:26242"), std::string::npos) << "no route to itself: " << c;
}

// Credentials (docs/credentials.md): generated once into RUN/secrets (0700, files 0600) and
// reused; the engines' files that hold them are 0600; no secret on any command line or in any
// environment (the nodes get paths).
TEST_F(Fixture, SecretsStayInFilesOnlyTheirUsersRead) {
  t.timeline = {Entry("timeline1", "127.0.0.1:6390"), Entry("timeline2", "127.0.0.1:6391")};
  ASSERT_TRUE(Of("patroni").Prepare(ctx).ok());
  std::vector<Node> nodes;
  // The kinds that hold or hand out credentials.
  for (const char* kind : {"etcd", "patroni", "redis", "timeline", "nats", "web", "worker"})
    for (const auto& e : Of(kind).Entries(t)) nodes.push_back(Of(kind).Make(e, ctx));
  auto mode = [](const std::filesystem::path& p) {
    return std::filesystem::status(p).permissions() & std::filesystem::perms::all;
  };
  using std::filesystem::perms;
  EXPECT_EQ(mode(dir / "secrets"), perms::owner_all);
  std::vector<std::string> values;
  for (const auto& f : std::filesystem::directory_iterator(dir / "secrets")) {
    EXPECT_EQ(mode(f.path()), perms::owner_read | perms::owner_write) << f.path();
    if (f.path().filename().string().rfind("pgpass", 0) != 0)
      values.push_back(secrets::Get(ctx.run_dir, f.path().filename().string()));
  }
  EXPECT_GE(values.size(), 12u) << "every engine's users";
  for (const auto& v : values) EXPECT_EQ(v.size(), 64u);
  EXPECT_EQ(secrets::Get(ctx.run_dir, "pg_app"), secrets::Get(ctx.run_dir, "pg_app"))
      << "read back, not made again";
  for (const char* f : {"pg1/patroni.yml", "redis1/users.acl", "redis1/redis.conf",
                        "timeline2/redis.conf", "nats1/nats.conf"})
    EXPECT_EQ(mode(dir / f), perms::owner_read | perms::owner_write) << f;
  EXPECT_EQ(Slurp(dir / "redis1" / "users.acl").find(secrets::Get(ctx.run_dir, "redis_cache")),
            std::string::npos)
      << "the ACL file holds hashes";
  for (const Node& n : nodes) {
    for (const auto& v : values) {
      for (const auto& a : n.spawn.argv) EXPECT_EQ(a.find(v), std::string::npos) << n.name;
      for (const auto& a : n.spawn.env) EXPECT_EQ(a.find(v), std::string::npos) << n.name;
    }
    if (n.name == "web1" || n.name == "worker1") {
      EXPECT_NE(std::find(n.spawn.env.begin(), n.spawn.env.end(),
                          "PGPASSFILE=" + (dir / "secrets" / "pgpass.app").string()),
                n.spawn.env.end());
    }
  }
  EXPECT_EQ(Slurp(dir / "secrets" / "pgpass.app"),
            "*:*:*:millions:" + secrets::Get(ctx.run_dir, "pg_app") + "\n");
}

// The timeline store: data, not a cache. Its primary starts first and every other node replicates
// it; web nodes and workers start once it is ready.
TEST_F(Fixture, TimelineNodesKeepAnAofNeverEvictAndReplicateTheFirst) {
  t.timeline = {Entry("timeline1", "127.0.0.1:26479"), Entry("timeline2", "127.0.0.1:26480")};
  t.timeline_settings.maxmemory = "128mb";
  ctx.engine_user = "postgres";
  const Recipe& r = Of("timeline");
  EXPECT_LT(Of("redis").Stage(), r.Stage());
  EXPECT_LT(r.Stage(), Of("web").Stage());
  EXPECT_LT(r.Stage(), Of("worker").Stage());
  EXPECT_FALSE(r.StartTogether()) << "the primary is ready before its replica starts";
  ASSERT_EQ(r.Entries(t).size(), 2u);
  EXPECT_EQ(r.Entries(t).front().name, "timeline1");
  auto value = [](const std::vector<std::string>& a, const std::string& flag) -> std::string {
    auto at = std::find(a.begin(), a.end(), flag);
    return at == a.end() || at + 1 == a.end() ? "<absent>" : *(at + 1);
  };
  Node primary = r.Make(t.timeline[0], ctx);
  const auto& a = primary.spawn.argv;
  EXPECT_EQ(a.front(), "redis-server");
  EXPECT_EQ(value(a, "--port"), "26479");
  EXPECT_EQ(value(a, "--appendonly"), "yes");
  EXPECT_EQ(value(a, "--appendfsync"), "everysec");
  EXPECT_EQ(value(a, "--save"), "") << "no RDB snapshots: the AOF is the durability";
  EXPECT_EQ(value(a, "--maxmemory"), "128mb");
  EXPECT_EQ(value(a, "--maxmemory-policy"), "noeviction") << "a store never evicts";
  EXPECT_EQ(value(a, "--dir"), (dir / "timeline1").string());
  EXPECT_TRUE(std::filesystem::is_directory(dir / "timeline1"));
  EXPECT_EQ(value(a, "--replicaof"), "<absent>") << "the first node is the primary";
  EXPECT_EQ(primary.spawn.user, "postgres");
  EXPECT_EQ(primary.spawn.log_path, dir.string() + "/logs/timeline1.log");
  Node replica = r.Make(t.timeline[1], ctx);
  const auto& b = replica.spawn.argv;
  auto of = std::find(b.begin(), b.end(), "--replicaof");
  ASSERT_NE(of, b.end());
  ASSERT_LE(of + 2, b.end() - 1);
  EXPECT_EQ(*(of + 1), "127.0.0.1");
  EXPECT_EQ(*(of + 2), "26479");
  EXPECT_EQ(value(b, "--dir"), (dir / "timeline2").string()) << "each node its own dir";
  EXPECT_EQ(value(b, "--appendonly"), "yes") << "a replica keeps its own AOF";
  EXPECT_EQ(replica.check_port, 26480);
  EXPECT_TRUE(r.Parts().empty()) << "chaos strikes its process group, like a cache node's";
  EXPECT_EQ(r.ScaleTable(), "");
  // Nothing listens there: neither is ready.
  EXPECT_FALSE(r.Ready(primary, std::chrono::milliseconds(200)));
  EXPECT_FALSE(r.Ready(replica, std::chrono::milliseconds(200)));
}

TEST_F(Fixture, WorkersRunOurBinaryAndScale) {
  Node n = Make("worker");
  EXPECT_EQ(n.spawn.argv,
            (std::vector<std::string>{"/bin/millions", "serve", "worker", "--config",
                                      dir.string() + "/topology.toml", "--node", "worker1"}));
  EXPECT_EQ(n.spawn.user, "") << "our own binary runs as the runner";
  EXPECT_EQ(n.check_host, "127.0.2.1");
  EXPECT_EQ(n.check_port, 8090);
  EXPECT_EQ(Of("worker").ScaleTable(), "worker.node");
  EXPECT_EQ(Of("worker").PublicUrl(t), "") << "workers face no client";
  t.postgres.clear();
  EXPECT_THROW(Of("worker").Check(t, "x.toml"), config::ConfigError)
      << "a job's photo lives in the database";
}

// The shipped default: every recipe accepts it, the queue and the timeline store are in it, and
// no two listeners of any node (of any kind) share an address.
TEST(LocalTopology, LoadsWithTheQueueAndNoAddressTwice) {
  auto t = topo::Topology::Load(MILLIONS_TOPOLOGIES "/local.toml");
  for (const auto& r : MakeRecipes()) EXPECT_NO_THROW(r->Check(t, "local.toml")) << r->Kind();
  ASSERT_EQ(t.nats.size(), 1u);
  EXPECT_EQ(t.nats[0].listen, "127.0.0.1:24222");
  EXPECT_EQ(t.nats[0].admin, "127.0.0.1:28222");
  ASSERT_EQ(t.worker.size(), 2u);
  ASSERT_EQ(t.timeline.size(), 2u);
  EXPECT_EQ(t.timeline[0].name, "timeline1") << "the primary";
  EXPECT_EQ(t.timeline[0].listen, "127.0.0.1:26479");
  EXPECT_EQ(t.timeline[1].listen, "127.0.0.1:26480");
  EXPECT_EQ(t.timeline_settings.maxmemory, "256mb");
  // One edge in front of the balancer, its files under the run dir (`down && rm -rf run` clears
  // them with the rest).
  ASSERT_EQ(t.edge.size(), 1u);
  EXPECT_EQ(t.edge[0].listen, "127.0.0.1:8090");
  EXPECT_EQ(t.edge[0].admin, "127.0.0.1:9091");
  auto edge = edge::ReadSettings(t);
  EXPECT_EQ(edge.store.disk_dir.rfind(t.runner.run_dir + "/", 0), 0u) << edge.store.disk_dir;
  EXPECT_EQ(edge.purge_token_file.rfind(t.runner.run_dir + "/", 0), 0u) << edge.purge_token_file;
  EXPECT_GT(edge.policy.grace, 0) << "the origin down: cached photos are still served";
  // Two DNS servers for the zone (a zone has two), answering with the balancer.
  ASSERT_EQ(t.dns.size(), 2u);
  EXPECT_EQ(t.dns[0].listen, "127.0.0.1:8053");
  EXPECT_EQ(t.dns[1].listen, "127.0.0.1:8054");
  auto dns = dns::ReadSettings(t);
  EXPECT_EQ(dns.zone.zone, "millions.test");
  EXPECT_EQ(dns.zone.balancers.size(), t.lb.size());
  EXPECT_EQ(dns.zone.name_servers.size(), 2u);
  // Prometheus, started last, its files under the run dir.
  const auto table = MakeRecipes();
  const Recipe& prom = *table.back();
  ASSERT_STREQ(prom.Kind(), "prometheus");
  ASSERT_EQ(prom.Entries(t).size(), 1u);
  EXPECT_EQ(prom.Entries(t)[0].listen, "127.0.0.1:9095");
  auto dir = std::filesystem::temp_directory_path() / ("prom_recipe_" + std::to_string(getpid()));
  RecipeContext ctx{&t, dir.string(), "/bin/millions", dir.string() + "/topology.toml", ""};
  Node n = prom.Make(prom.Entries(t)[0], ctx);
  EXPECT_EQ(n.spawn.argv[0], "prometheus");
  EXPECT_NE(std::find(n.spawn.argv.begin(), n.spawn.argv.end(),
                      "--storage.tsdb.path=" + dir.string() + "/prometheus/data"),
            n.spawn.argv.end());
  for (const char* f : {"prometheus.yml", "rules.yml", "targets/millions.json"})
    EXPECT_TRUE(std::filesystem::exists(dir / "prometheus" / f)) << f;
  std::filesystem::remove_all(dir);
  std::set<std::string> seen{t.runner.admin};
  for (const auto& r : MakeRecipes())
    for (const auto& e : r->Entries(t))
      for (const auto& a : {e.listen, e.rest, e.admin, e.tls_listen, e.peer})
        if (!a.empty()) {
          EXPECT_TRUE(seen.insert(a).second) << a << " twice (" << e.name << ")";
        }
}

// local.toml with three NATS servers keeping the stream on all three, under a run dir of its own.
TEST(Nats3Topology, FormsAClusterOfThreeWithReplicasThree) {
  auto t = topo::Topology::Load(MILLIONS_TOPOLOGIES "/nats3.toml");
  for (const auto& r : MakeRecipes()) EXPECT_NO_THROW(r->Check(t, "nats3.toml")) << r->Kind();
  ASSERT_EQ(t.nats.size(), 3u);
  EXPECT_EQ(t.nats_stream_replicas, 3);
  std::set<std::string> seen{t.runner.admin};
  for (const auto& r : MakeRecipes())
    for (const auto& e : r->Entries(t))
      for (const auto& a : {e.listen, e.rest, e.admin, e.tls_listen, e.peer})
        if (!a.empty()) {
          EXPECT_TRUE(seen.insert(a).second) << a << " twice (" << e.name << ")";
        }
  EXPECT_NE(t.runner.run_dir,
            topo::Topology::Load(MILLIONS_TOPOLOGIES "/local.toml").runner.run_dir)
      << "a one-server stream is not moved onto three: state of its own";
  auto edge = edge::ReadSettings(t);
  EXPECT_EQ(edge.store.disk_dir.rfind(t.runner.run_dir + "/", 0), 0u) << "its own edge cache too";
  EXPECT_EQ(edge.purge_token_file.rfind(t.runner.run_dir + "/", 0), 0u);
}

}  // namespace
}  // namespace millions::ctl

namespace millions::ctl {
namespace {

// local.toml's two shards: each cluster is a Patroni scope of its own (its own leader key in
// the one etcd), and status names each member's cluster.
TEST_F(Fixture, EachShardClusterIsItsOwnPatroniScope) {
  auto local = topo::Topology::Load(MILLIONS_TOPOLOGIES "/local.toml");
  ASSERT_TRUE(local.shards.enabled);
  ASSERT_EQ(local.pg_clusters.size(), 2u);
  RecipeContext c = ctx;
  c.topology = &local;
  const Recipe& r = Of("patroni");
  std::map<std::string, std::string> scope_of;
  for (const auto& e : r.Entries(local)) {
    Node n = r.Make(e, c);
    std::ifstream in(dir / e.name / "patroni.yml");
    std::string first;
    std::getline(in, first);
    scope_of[e.name] = first;
    n.recipe = &r;
    boost::json::array rows;
    r.StatusRows({})(n, boost::json::object{{"name", n.name}, {"state", "stopped"}}, &rows);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[1].at("cluster"), topo::ClusterOfNode(local, e.name)->name.c_str());
  }
  EXPECT_EQ(scope_of, (std::map<std::string, std::string>{{"pg1", "scope: millions-shard1"},
                                                          {"pg2", "scope: millions-shard1"},
                                                          {"pg3", "scope: millions-shard2"},
                                                          {"pg4", "scope: millions-shard2"}}));
  // Not sharded: the one scope every older run directory was made with.
  Make("patroni");
  std::ifstream in(dir / "pg1" / "patroni.yml");
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "scope: millions");
}

// The configuration every member is given: failsafe mode on (docs/faults.md), a replica's clone
// with an immediate checkpoint, and, over several hosts, each host's address in pg_hba.
TEST_F(Fixture, PatroniYamlHasFailsafeAndTheHostsAddresses) {
  auto read = [&] {
    Make("patroni");
    std::ifstream in(dir / "pg1" / "patroni.yml");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  std::string yml = read();
  EXPECT_NE(yml.find("    failsafe_mode: true\n"), std::string::npos) << yml;
  EXPECT_NE(yml.find("  basebackup:\n  - checkpoint: 'fast'\n"), std::string::npos) << yml;
  EXPECT_EQ(yml.find("10.0.0."), std::string::npos) << "one machine: loopback only";
  t.runner.patroni_failsafe_mode = false;
  EXPECT_NE(read().find("    failsafe_mode: false\n"), std::string::npos);
  // Two hosts: their addresses (a host's, a node's) admitted, loopback's and the test range's
  // lines kept, nothing twice.
  t.hosts = {{"h1", "10.0.0.1", ""}, {"h2", "10.0.0.2", ""}};
  t.web[0].listen = "10.0.0.2:8080";
  t.postgres[0].listen = "10.0.0.1:5432";
  yml = read();
  for (const char* ip : {"10.0.0.1/32", "10.0.0.2/32"}) {
    EXPECT_NE(yml.find(std::string("  - host all all ") + ip + " scram-sha-256\n"),
              std::string::npos)
        << yml;
    EXPECT_NE(yml.find(std::string("  - host replication replicator ") + ip), std::string::npos);
    size_t count = 0;
    for (size_t at = yml.find(ip); at != std::string::npos; at = yml.find(ip, at + 1)) ++count;
    EXPECT_EQ(count, 2u) << ip << ": one replication line and one for every database";
  }
  EXPECT_NE(yml.find("127.0.0.0/8"), std::string::npos);
  EXPECT_EQ(yml.find("127.0.0.1/32"), std::string::npos) << "loopback is admitted whole already";
}

}  // namespace
}  // namespace millions::ctl

namespace millions::ctl {
namespace {

// [postgres] primary_dc: dc2's member is a standby cluster of its own scope, streaming from the
// primary DC's first member, which it is bootstrapped from by a base backup.
TEST_F(Fixture, AnotherDcsMembersAreAStandbyCluster) {
  std::string path = (dir / "dcs.toml").string();
  std::ofstream(path) << "[[dc]]\nname = \"dc1\"\n[[dc]]\nname = \"dc2\"\n[runner]\nrun_dir = \""
                      << dir.string() << "\"\n[postgres]\nprimary_dc = \"dc1\"\n"
                      << "[[postgres.node]]\nname = \"pg1\"\ndc = \"dc1\"\n"
                      << "listen = \"127.0.0.1:5432\"\nrest = \"127.0.0.1:8008\"\n"
                      << "[[postgres.node]]\nname = \"pg3\"\ndc = \"dc2\"\n"
                      << "listen = \"127.0.0.1:5434\"\nrest = \"127.0.0.1:8010\"\n";
  auto t = topo::Topology::Load(path);
  RecipeContext c = ctx;
  c.topology = &t;
  const Recipe& r = Of("patroni");
  std::map<std::string, std::string> yml;
  for (const auto& e : r.Entries(t)) {
    r.Make(e, c);
    std::ifstream in(dir / e.name / "patroni.yml");
    yml[e.name] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_EQ(yml["pg1"].rfind("scope: millions\n", 0), 0u);
  EXPECT_EQ(yml["pg1"].find("standby_cluster"), std::string::npos);
  EXPECT_EQ(yml["pg3"].rfind("scope: millions-dc2\n", 0), 0u);
  EXPECT_NE(yml["pg3"].find("    standby_cluster:\n      host: '127.0.0.1'\n      port: 5432\n"
                            "      create_replica_methods:\n      - basebackup\n"),
            std::string::npos)
      << yml["pg3"];
}

}  // namespace
}  // namespace millions::ctl
