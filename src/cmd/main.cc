// millions: one binary, one subcommand per job (see ../shared/CONTRACT.md section 2).
// Exit codes: 0 success, 1 runtime failure, 2 usage error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string_view>

#include "core/config.h"
#include "core/topology.h"
#include "ctl/autoscale.h"
#include "ctl/chaos_matrix.h"
#include "ctl/load.h"
#include "ctl/logs.h"
#include "ctl/prometheus.h"
#include "ctl/reshard.h"
#include "ctl/runner.h"
#include "ctl/scenario.h"
#include "ctl/seed.h"
#include "roles/dns/serve.h"
#include "roles/dns/settings.h"
#include "roles/edge/serve.h"
#include "roles/edge/settings.h"
#include "roles/lb/serve.h"
#include "roles/lb/settings.h"
#include "roles/web/serve.h"
#include "roles/web/settings.h"
#include "roles/web/single.h"
#include "roles/worker/serve.h"

namespace {

// `up` starts every role: each role's reader checks its sections, then no key may be left
// unread, so a typo anywhere fails before anything starts.
void CheckTopology(const std::string& path) {
  auto t = millions::topo::Topology::Load(path);
  millions::lb::ReadSettings(t);
  millions::edge::ReadSettings(t);
  millions::dns::ReadSettings(t);
  millions::web::ReadSettings(t);
  millions::ctl::ReadAutoscale(t);
  millions::ctl::ReadPrometheus(t);
  t.Check({"*"});
  if (!t.web.empty() && t.postgres.empty())
    throw millions::config::ConfigError(path + ": the web nodes need a database: the topology " +
                                        "has no [[postgres.node]]");
}

// Start-up errors (docs/errors.md): a bad topology or flag is a usage error (2), anything else a
// runtime failure (1).
template <class F>
int Guarded(F run) {
  try {
    return run();
  } catch (const millions::config::ConfigError& e) {
    fprintf(stderr, "millions: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fprintf(stderr, "millions: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "millions: a photo-sharing service that scales from one process to many data centres.\n"
      "Stage 1 runs it all in one process: `millions single`."};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");

  millions::web::SingleFlags single;
  int port = -1;
  std::string data, host;
  auto* cmd = app.add_subcommand(
      "single",
      "Run the whole service in one process: HTTP API and browser UI, embedded SQLite, in-process\n"
      "cache, durable in-process job queue and photo workers. Stops gracefully on SIGTERM/Ctrl-C.");
  cmd->add_option("--port", port, "TCP port to listen on (default 8080; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--data", data, "Data directory (default ./data/single)");
  cmd->add_option("--host", host, "Address to listen on (default 127.0.0.1)");
  cmd->add_option("--topology", single.topology,
                  "Topology file with the node's settings (default: topologies/single.toml when\n"
                  "present, else built-in defaults; see docs/topology.md)");

  std::string role, config_path, node;
  auto* serve = app.add_subcommand(
      "serve",
      "Run one node of a topology (what `millions up` starts for each node). Roles: web (the API\n"
      "and UI on PostgreSQL; with photo workers of its own when the topology has no NATS), lb\n"
      "(the load balancer), worker (photo edits and feed fan-out from the NATS queue), edge (the\n"
      "CDN edge: a caching proxy in front of the balancers, docs/edge.md), dns (the zone's\n"
      "authoritative DNS server: each region's nearest healthy balancers, docs/dns.md).");
  serve->add_option("role", role, "The node's role")
      ->required()
      ->check(CLI::IsMember({"web", "lb", "worker", "edge", "dns"}));
  serve->add_option("--config", config_path, "Topology file")->required();
  serve->add_option("--node", node, "This node's name in the topology")->required();

  millions::ctl::UpFlags up_flags;
  auto* up = app.add_subcommand(
      "up",
      "Start every node of a topology on this machine (etcd, PostgreSQL under Patroni, Redis\n"
      "cache nodes, web nodes, balancers) and supervise them: a node that dies is restarted\n"
      "with backoff; with [autoscale.worker] / [autoscale.web], adds and removes workers and web\n"
      "nodes with the load (docs/autoscale.md). Prints the URLs when ready. Ctrl-C (or\n"
      "`millions down`) stops everything in reverse order.");
  up->add_option("topology", up_flags.topology, "Topology file (default topologies/local.toml)");
  up->add_flag("--detach", up_flags.detach, "Run in the background; return once every node runs");
  up->add_option("--host", up_flags.host,
                 "A topology of several machines ([[host]] tables): start this host's nodes only "
                 "(docs/deploy.md, \"Beyond one machine\")");

  std::string topo = "topologies/local.toml";
  bool as_json = false;
  auto* status = app.add_subcommand("status", "Every node of the running topology and its state");
  status->add_flag("--json", as_json, "Print the contract's JSON shape");
  status->add_option("--topology", topo, "Topology file (default topologies/local.toml)");
  auto* down = app.add_subcommand("down", "Stop what `millions up` started, in reverse order");
  down->add_option("--topology", topo, "Topology file (default topologies/local.toml)");
  std::string chaos_action, chaos_node;
  auto* chaos = app.add_subcommand(
      "chaos",
      "kill (SIGKILL), stop (SIGSTOP) or cont (SIGCONT) one node; the supervisor reacts.\n"
      "dc-down DC kills every node of a data centre and holds them down; dc-up DC restarts them");
  chaos->add_option("action", chaos_action, "kill | stop | cont | dc-down | dc-up")
      ->required()
      ->check(CLI::IsMember({"kill", "stop", "cont", "dc-down", "dc-up"}));
  chaos
      ->add_option("node", chaos_node,
                   "Node name, as `millions status` lists it (a DC's name for dc-down and dc-up)")
      ->required();
  chaos->add_option("--topology", topo, "Topology file (default topologies/local.toml)");
  double chaos_hold = 0;
  chaos
      ->add_option("--hold", chaos_hold,
                   "With kill: seconds the supervisor waits before restarting the node (a machine "
                   "that stays down; lets Patroni fail over)")
      ->check(CLI::Range(0.0, 3600.0));
  std::string chaos_part;
  chaos
      ->add_option("--part", chaos_part,
                   "Database nodes only: patroni (Patroni alone), postgres (the PostgreSQL it "
                   "manages, alone) or host (both, as a machine). Default: host for kill, patroni "
                   "for stop and cont")
      ->check(CLI::IsMember({"patroni", "postgres", "host"}));
  std::string dc_action, dc_name;
  auto* dc = app.add_subcommand(
      "dc",
      "Move the database between data centres (docs/datacentres.md): failover DC promotes DC's\n"
      "standby cluster with no acknowledged write lost; failback moves it back to [postgres]\n"
      "primary_dc; status prints which DC takes writes and the last operation");
  dc->add_option("action", dc_action, "failover | failback | status")
      ->required()
      ->check(CLI::IsMember({"failover", "failback", "status"}));
  dc->add_option("dc", dc_name, "failover: the DC to move writes to");
  dc->add_option("--topology", topo, "Topology file (default topologies/local.toml)");
  std::string scale_role;
  int scale_count = 0;
  auto* scale =
      app.add_subcommand("scale",
                         "Add or remove web or worker nodes at run time (removed web nodes drain;\n"
                         "removed workers finish the jobs in hand)");
  scale->add_option("role", scale_role, "Tier to scale: web or worker")
      ->required()
      ->check(CLI::IsMember({"web", "worker"}));
  scale->add_option("count", scale_count, "Number of nodes")->required()->check(CLI::Range(1, 32));
  scale->add_option("--topology", topo, "Topology file (default topologies/local.toml)");
  // The runner of which host status, down, chaos and scale talk to ([[host]] tables).
  std::string cli_host;
  for (auto* cmd : {status, down, chaos, scale})
    cmd->add_option("--host", cli_host,
                    "A topology of several machines: the runner of this host (its [[host]] admin)");

  millions::ctl::LoadFlags load_flags;
  auto* load = app.add_subcommand(
      "load",
      "Drive simulated users (sign-up, log-in, browse Zipf-popular users, feed, follow, upload,\n"
      "edit) against a running service; a live progress line, then successes/s (2xx and 3xx:\n"
      "errors never count as throughput), latency p50/p90/p99/max of successes and of all\n"
      "requests, and errors by kind (connect_error, timeout, io_error, http_4xx, http_5xx) and\n"
      "by status. Closed loop by default; --rate for open loop.");
  load->add_option("--target", load_flags.target,
                   "Base URL, or several comma-separated: each connection fails over to the next\n"
                   "on a transport error (default http://127.0.0.1:8080)");
  load->add_option("--region", load_flags.region,
                   "Load where the deployment's DNS sends this [[dns.region]]: the service's name\n"
                   "asked with the region's client subnet (EDNS Client Subnet); the answered\n"
                   "balancers are the targets. Needs a running `millions up` of --topology");
  load->add_option("--topology", load_flags.topology,
                   "With --region: the topology file (default topologies/local.toml)");
  load->add_option("--users", load_flags.users, "Simulated users (default 20)")
      ->check(CLI::Range(1, 10000));
  load->add_option("--duration", load_flags.duration_s, "Seconds to run (default 30)")
      ->check(CLI::Range(1, 3600));
  load->add_option("--mix", load_flags.mix, "default | browse | write")
      ->check(CLI::IsMember({"default", "browse", "write"}));
  load->add_option("--rate", load_flags.rate, "Open loop: requests per second (default 0: closed)")
      ->check(CLI::Range(0.0, 1e6));
  load->add_option("--connections", load_flags.connections,
                   "Open loop: most connections at once (default 64)")
      ->check(CLI::Range(1, 10000));
  load->add_option("--json", load_flags.json_out, "Also write the summary as JSON to this file");
  load->add_option("--max-errors", load_flags.max_errors,
                   "Exit 1 when more requests than this fail (default -1: no limit; benches use 0)")
      ->check(CLI::Range(-1, 1000000000));

  millions::ctl::SeedFlags seed_flags;
  auto* seed = app.add_subcommand(
      "seed",
      "Fill the running topology's PostgreSQL with synthetic users (PREFIX0, PREFIX1, ...),\n"
      "follow edges (followees drawn by 1/rank popularity: a few celebrities) and photos, by\n"
      "COPY on each cluster's primary, one thread per cluster, with a progress line. Every seeded\n"
      "user's password is printed at the end. Ctrl-C stops after the current batch; the same\n"
      "command again goes on (rows already there are skipped). Exit 1 on a database error or an\n"
      "interrupted load, 2 when the topology has no PostgreSQL.");
  seed->add_option("--users", seed_flags.users, "How many users")
      ->required()
      ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}));
  seed->add_option("--follows", seed_flags.follows,
                   "Follow edges per user, on average (default 10)")
      ->check(CLI::Range(0.0, 1000.0));
  seed->add_option("--photos", seed_flags.photos, "Photos per user, on average (default 1)")
      ->check(CLI::Range(0.0, 1000.0));
  seed->add_option("--seed", seed_flags.seed,
                   "The generator's seed: same seed, same data (default 1)");
  seed->add_option("--prefix", seed_flags.prefix, "Handle prefix (default seed)")
      ->check([](const std::string& p) {
        bool ok = !p.empty() && p.size() <= 16;
        for (char c : p) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
        return ok ? std::string() : std::string("1-16 characters of a-z, 0-9 and _");
      });
  seed->add_option("--batch", seed_flags.batch, "Users per transaction (default 20000)")
      ->check(CLI::Range(int64_t{100}, int64_t{1'000'000}));
  seed->add_option("--topology", seed_flags.topology,
                   "Topology file (default topologies/local.toml)");

  millions::ctl::ReshardFlags reshard_flags;
  auto* reshard = app.add_subcommand(
      "reshard",
      "Move logical shards between the database clusters of the running sharded topology,\n"
      "online (docs/sharding.md): each moving shard is copied with change capture, caught up,\n"
      "frozen for its cut-over (writes to it wait), verified (row counts and checksums per user),\n"
      "switched (the next shard map version in etcd) and deleted from its old cluster. One\n"
      "reshard at a time (a lock in etcd); the plan is recorded in etcd after every step, and the\n"
      "same command resumes an unfinished one. A progress line on stderr; the write pause per\n"
      "shard at the end. Exit 1 on an error or when another reshard runs, 2 on a usage error.");
  reshard
      ->add_option("--shards", reshard_flags.shards,
                   "Spread the logical shards over the topology's first N clusters")
      ->check(CLI::Range(1, 1000));
  reshard->add_option("--add", reshard_flags.add,
                      "Add this cluster of the topology to those the map uses");
  reshard->add_option("--isolate", reshard_flags.isolate,
                      "Move this user's logical shard (a handle or a user id) onto a cluster of\n"
                      "its own: --to, or the first cluster of the topology that holds nothing");
  reshard->add_option("--to", reshard_flags.to, "With --isolate: the cluster");
  reshard->add_flag("--status", reshard_flags.status,
                    "Print the recorded plan, its progress and who runs it");
  reshard->add_option("--parallel", reshard_flags.parallel, "Shards in flight at once (default 2)")
      ->check(CLI::Range(1, 16));
  reshard
      ->add_option("--grace-ms", reshard_flags.grace_ms,
                   "After a cut-over, wait this long before deleting the moved rows from the\n"
                   "old cluster: web nodes read the new map every 500 ms (default 2000)")
      ->check(CLI::Range(0, 600000));
  reshard->add_option("--topology", reshard_flags.topology,
                      "Topology file (default topologies/local.toml)");

  millions::ctl::LogsFlags logs_flags;
  auto* logs_cmd = app.add_subcommand(
      "logs",
      "Every node's JSON log of the running (or last) run, merged in time order: one line per\n"
      "record (time, node, level, msg, then the other fields as key=value), or the raw JSON lines\n"
      "with --json. Filters combine with AND. The engines' own text logs (Patroni/PostgreSQL,\n"
      "etcd, Redis, NATS) are left out unless --engines, or --node / --role names them; their\n"
      "lines carry the node's name and a best-effort time. Reads RUN_DIR/logs/*.log (the\n"
      "topology's [runner] run_dir, relative to the current directory) and RUN_DIR/runner.log.\n"
      "Exit 1 when no run is found. See docs/observability.md.");
  logs_cmd->add_option("--node", logs_flags.filter.nodes, "Only these nodes (repeat or a,b)")
      ->delimiter(',');
  logs_cmd
      ->add_option("--role", logs_flags.filter.roles,
                   "Only these roles: web, lb, worker, edge, runner, patroni, etcd, redis, "
                   "timeline, nats, prometheus (repeat or a,b)")
      ->delimiter(',');
  logs_cmd->add_option("--level", logs_flags.filter.level, "The lowest level shown")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  logs_cmd->add_option("--since", logs_flags.since,
                       "Only records from this time on: a duration before now (90s, 15m, 2h, 1d) "
                       "or an RFC 3339 time");
  logs_cmd->add_option("--request-id", logs_flags.filter.request_id,
                       "Only one request's lines (its X-Request-Id), on every tier");
  logs_cmd->add_option("--trace-id", logs_flags.filter.trace_id,
                       "Only one trace's lines (from the W3C traceparent)");
  logs_cmd->add_flag("-f,--follow", logs_flags.follow,
                     "Then follow: new lines of every node (also nodes added meanwhile, and files "
                     "re-created by a restart) until Ctrl-C");
  logs_cmd->add_flag("--json", logs_flags.json, "Print the JSON lines as written");
  logs_cmd->add_flag("--engines", logs_flags.filter.engines,
                     "Also the engines' own text lines, of every node");
  logs_cmd->add_option("--topology", logs_flags.topology,
                       "Topology file (default topologies/local.toml)");

  // `millions scenario`: parsed on its own (ctl/scenario.cc), so its flags are unit-tested there;
  // listed here for `millions --help`.
  app.add_subcommand("scenario",
                     "One step of the scaling story, measured on this machine: a table and an SVG\n"
                     "plot (`millions scenario list`, `millions scenario --help`)")
      ->allow_extras()
      ->prefix_command();
  if (argc >= 2 && std::string_view(argv[1]) == "scenario") {
    millions::ctl::ScenarioFlags sf;
    std::vector<std::string> args(argv + 2, argv + argc);
    int rc = millions::ctl::ParseScenarioFlags(args, &sf);
    if (rc >= 0) return rc;
    return Guarded([&] { return millions::ctl::RunScenarios(sf); });
  }

  // `millions chaos matrix`: parsed on its own, since `chaos` itself takes positional arguments.
  chaos->footer(
      "\n`millions chaos matrix --help`: every single fault in turn under a write/read ledger.\n");
  if (argc >= 3 && std::string_view(argv[1]) == "chaos" && std::string_view(argv[2]) == "matrix") {
    millions::ctl::MatrixFlags mf;
    CLI::App matrix{
        "Run every single fault in turn against the running topology, each under a ledger of\n"
        "writes and reads through the public URL: warm-up 3 s, the fault (kill -9 held down S\n"
        "seconds, SIGSTOP for S seconds then SIGCONT, or a restart), recovery, full health, then\n"
        "every acknowledged write checked. One table: fault, target, write gap (RTO), failed\n"
        "writes and reads, lost, duplicated, time to full health, and the edit jobs --jobs\n"
        "writers asked for: accepted, lost (never done), duplicated (two versions), p99 accept\n"
        "to done. Also written to RUN_DIR/chaos_matrix.json. Exit 1 when a row lost or\n"
        "duplicated a write or a job.",
        "millions chaos matrix"};
    matrix.add_option(
        "--faults", mf.faults,
        "Comma-separated ACTION:ROLE (ACTION kill, pause, restart; ROLE lb, web, "
        "redis, patroni-leader, patroni-replica, postgres-primary, db-host, "
        "etcd-member, etcd-all, nats, worker, edge, runner), none (a baseline), or all "
        "(default; roles the topology lacks are skipped)");
    matrix.add_option("--seconds", mf.seconds, "How long each fault is kept (default 25)")
        ->check(CLI::Range(1, 3600));
    matrix.add_option("--json", mf.json_out, "Also write {\"rows\":[...]} to this file");
    matrix.add_option("--topology", mf.topology, "Topology file (default topologies/local.toml)");
    matrix.add_option("--writers", mf.writers, "Ledger writers (default 4)")
        ->check(CLI::Range(1, 64));
    matrix.add_option("--readers", mf.readers, "Ledger readers (default 2)")
        ->check(CLI::Range(0, 64));
    matrix
        .add_option("--jobs", mf.jobs,
                    "Ledger writers that also ask for an edit job on each upload (default 1; "
                    "0: no jobs; at most --writers)")
        ->check(CLI::Range(0, 64));
    matrix
        .add_option("--settle", mf.settle,
                    "Seconds the verification may wait for writes to read back and accepted "
                    "jobs to finish (default 60; above the queue's ack_wait_ms or lease_ms)")
        ->check(CLI::Range(1, 3600));
    try {
      matrix.parse(argc - 2, argv + 2);
    } catch (const CLI::ParseError& e) {
      return matrix.exit(e) == 0 ? 0 : 2;
    }
    return Guarded([&] { return millions::ctl::RunChaosMatrix(mf); });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  return Guarded([&] {
    if (*cmd) {
      if (port >= 0) single.port = port;
      if (!data.empty()) single.data_dir = data;
      if (!host.empty()) single.host = host;
      return millions::web::RunSingle(single);
    }
    if (*serve && role == "lb") return millions::lb::Serve(config_path, node);
    if (*serve && role == "worker") return millions::worker::Serve(config_path, node);
    if (*serve && role == "edge") return millions::edge::Serve(config_path, node);
    if (*serve && role == "dns") return millions::dns::Serve(config_path, node);
    if (*serve) return millions::web::ServeWeb(config_path, node);
    if (*up) {
      CheckTopology(up_flags.topology);
      return millions::ctl::Up(up_flags);
    }
    if (*load) return millions::ctl::RunLoad(load_flags);
    if (*logs_cmd) return millions::ctl::RunLogs(logs_flags);
    if (*seed) return millions::ctl::RunSeed(seed_flags);
    if (*reshard) return millions::ctl::RunReshard(reshard_flags);
    millions::ctl::SelectCliHost(cli_host);
    if (*status) return millions::ctl::PrintStatus(topo, as_json);
    if (*down) return millions::ctl::Down(topo);
    if (*chaos) return millions::ctl::Chaos(topo, chaos_action, chaos_node, chaos_hold, chaos_part);
    if (*dc) return millions::ctl::Dc(topo, dc_action, dc_name);
    if (*scale) return millions::ctl::Scale(topo, scale_role, scale_count);
    return 2;
  });
}
