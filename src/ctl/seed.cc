#include "ctl/seed.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "app/auth.h"
#include "core/config.h"
#include "core/env.h"
#include "core/pg.h"
#include "core/topology.h"
#include "ctl/png.h"
#include "ctl/secrets.h"
#include "data/seed_writer.h"
#include "data/shard_map.h"
#include "data/shard_map_etcd.h"
#include "roles/web/data_layer.h"
#include "roles/web/settings.h"

namespace millions::ctl {
namespace {

std::atomic<bool> g_stop{false};
void OnSeedSignal(int) { g_stop = true; }

// The password of every seeded user (printed at the end, for logging in as one).
constexpr const char* kSeedPassword = "seeded-user";

struct Target {
  std::string cluster;
  pg::Options pg;
};

pg::Options ClusterPg(const topo::Topology& t, const topo::PgClusterEntry& c,
                      const std::string& run_dir) {
  pg::Options o = ClusterWriterPg(t, c, run_dir, "millions-seed");
  o.statement_timeout_ms = 600'000;  // a batch's INSERT ... SELECT may take a while
  return o;
}

// The clusters to fill and the map that places users on them: a sharded topology's map from
// etcd (the one the web nodes follow), else one cluster holding every logical shard.
std::vector<Target> Targets(const topo::Topology& t, const std::string& run_dir,
                            data::ShardMap* map) {
  std::vector<Target> out;
  if (!t.shards.enabled) {
    out.push_back({"main", ClusterPg(t, t.pg_clusters.front(), run_dir)});
    map->version = 1;
    map->clusters = {"main"};
    map->owner.assign(data::kDefaultLogicalShards, 0);
    return out;
  }
  data::EtcdOptions eo = web::ShardMapEtcdOptions(t);
  eo.user = "shardmap";
  eo.password = secrets::Get(run_dir, secrets::kEtcdShardMap);
  data::EtcdShardMapClient etcd(eo);
  auto current = etcd.Read();
  if (!current.ok())
    throw std::runtime_error("the shard map (" + eo.key + "): " + current.error().message +
                             " (is the topology up?)");
  *map = current->map;
  for (const auto& c : t.pg_clusters) out.push_back({c.name, ClusterPg(t, c, run_dir)});
  for (const auto& name : map->clusters)
    if (std::none_of(out.begin(), out.end(), [&](const Target& x) { return x.cluster == name; }))
      throw std::runtime_error("the shard map names cluster " + name +
                               ", which the topology does not have");
  return out;
}

std::string Duration(double s) {
  if (s < 0) return "--";
  const long long t = static_cast<long long>(s + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
  return buf;
}

}  // namespace

pg::Options ClusterWriterPg(const topo::Topology& t, const topo::PgClusterEntry& c,
                            const std::string& run_dir, const std::string& application_name) {
  std::string hosts, ports;
  for (const auto& n : c.nodes) {
    auto hp = config::ParseHostPort(n.listen);
    hosts += (hosts.empty() ? "" : ",") + hp.host;
    ports += (ports.empty() ? "" : ",") + std::to_string(hp.port);
  }
  pg::Options o;
  o.conninfo = "host=" + hosts + " port=" + ports + " dbname=" + t.pg_database +
               " user=" + t.pg_user +
               " target_session_attrs=read-write application_name=" + application_name +
               " passfile=" + secrets::Path(run_dir, secrets::kPgPassApp);
  o.pool_size = 1;
  return o;
}

int RunSeed(const SeedFlags& flags) {
  topo::Topology t = topo::Topology::Load(flags.topology);
  if (t.postgres.empty()) {
    std::fprintf(stderr,
                 "millions seed: %s has no PostgreSQL to fill ([[postgres.node]]); `millions "
                 "single` keeps its data in SQLite, which the API fills\n",
                 flags.topology.c_str());
    return 2;
  }
  if (flags.users < 1) throw config::ConfigError("--users must be at least 1");
  const std::string run_dir =
      std::filesystem::absolute(t.runner.run_dir).lexically_normal().string();
  data::ShardMap map;
  std::vector<Target> targets = Targets(t, run_dir, &map);

  data::SeedOptions so;
  so.users = flags.users;
  so.follows_per_user = flags.follows;
  so.photos_per_user = flags.photos;
  so.seed = flags.seed;
  so.prefix = flags.prefix;
  so.now_ms = Env::Default().WallMillis();
  so.logical_shards = map.logical();
  data::SeedGenerator gen(so);

  data::SeedWriteOptions wo;
  auto hash = app::HashPassword(kSeedPassword);
  if (!hash.ok()) throw std::runtime_error("hashing the seed password: " + hash.error().message);
  wo.password_hash = *hash;
  wo.media.content_type = "image/png";
  wo.media.bytes = MakePng(64, 48, static_cast<int>(flags.seed));
  wo.media.key = app::Sha256Hex(wo.media.bytes).substr(0, 32) + ".png";
  wo.media.width = 64;
  wo.media.height = 48;
  wo.batch_users = flags.batch;

  std::signal(SIGINT, OnSeedSignal);
  std::signal(SIGTERM, OnSeedSignal);
  std::mutex mu;
  std::vector<data::SeedCounts> counts(targets.size());
  std::vector<std::string> errors(targets.size());
  const auto start = std::chrono::steady_clock::now();
  auto print = [&](bool final) {  // under mu
    int64_t done = 0, rows = 0, skipped = 0;
    for (const auto& c : counts) {
      done += c.users_done;
      rows += c.users + c.follows + c.photos;
      skipped += c.skipped;
    }
    const double total = double(flags.users) * double(targets.size());
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double frac = total > 0 ? done / total : 1;
    const int width = 24, filled = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r[%s%s] %3.0f%%  %lld rows  %.0f rows/s  skipped %lld  ETA %s   %s",
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                 frac * 100, static_cast<long long>(rows), s > 0 ? rows / s : 0.0,
                 static_cast<long long>(skipped),
                 Duration(frac > 0 ? s * (1 - frac) / frac : -1).c_str(), final ? "\n" : "");
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < targets.size(); ++i) {
    threads.emplace_back([&, i] {
      data::SeedWriteOptions mine = wo;
      mine.progress = [&, i](const data::SeedCounts& c) {
        std::lock_guard lock(mu);
        counts[i] = c;
        print(false);
        return !g_stop.load();
      };
      pg::Pool pool(targets[i].pg);
      auto conn = pool.Acquire();
      if (!conn.ok()) {
        errors[i] = conn.error().message;
        return;
      }
      auto c = data::WriteSeed(gen, map, targets[i].cluster, **conn, mine);
      std::lock_guard lock(mu);
      if (c.ok())
        counts[i] = *c;
      else
        errors[i] = c.error().message;
    });
  }
  for (auto& th : threads) th.join();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  {
    std::lock_guard lock(mu);
    print(true);
  }
  int rc = 0;
  data::SeedCounts sum;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!errors[i].empty()) {
      std::fprintf(stderr, "millions seed: cluster %s: %s\n", targets[i].cluster.c_str(),
                   errors[i].c_str());
      rc = 1;
    }
    sum.users += counts[i].users;
    sum.follows += counts[i].follows;
    sum.photos += counts[i].photos;
    sum.skipped += counts[i].skipped;
  }
  const bool complete = rc == 0 && !g_stop;
  std::printf(
      "seeded %lld users, %lld follow rows (an edge between two clusters is on both), %lld photos; "
      "%lld "
      "rows were already there\n",
      static_cast<long long>(sum.users), static_cast<long long>(sum.follows),
      static_cast<long long>(sum.photos), static_cast<long long>(sum.skipped));
  if (!complete) {
    std::printf("stopped before the end: run the same command again to go on\n");
    return 1;
  }
  std::printf("log in as %s0 .. %s%lld with the password \"%s\"\n", flags.prefix.c_str(),
              flags.prefix.c_str(), static_cast<long long>(flags.users - 1), kSeedPassword);
  return 0;
}

}  // namespace millions::ctl
