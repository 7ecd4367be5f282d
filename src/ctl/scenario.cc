// `millions scenario`: the flags, the table of scenarios, and running them (see scenario.h).
#include "ctl/scenario.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ctl/scenario_env.h"
#include "ctl/scenarios.h"

namespace millions::ctl {
namespace fs = std::filesystem;

const std::vector<ScenarioInfo>& Scenarios() {
  static const std::vector<ScenarioInfo> all = {
      {"single-vs-tiers", "one process against the tiers",
       "the same load on `millions single` and on a balancer, two web nodes, PostgreSQL and "
       "Redis",
       true, "", RunSingleVsTiers},
      {"lb-failover", "a web node killed under load",
       "successes and errors per second through the balancer while one of two web nodes is "
       "killed and held down",
       true, "", RunLbFailover},
      {"replicas", "reads spread over replicas; a replica, then the primary lost",
       "database reads by member role, and the service's errors while a replica and then the "
       "primary are killed",
       true, "", RunReplicas},
      {"cache", "database load with and without the cache tier",
       "a read-heavy load with no cache, then with L1 and two Redis cache nodes: database reads "
       "per request",
       true, "", RunCache},
      {"cdn", "origin offload through the edge",
       "the same photo reads straight at the balancer, then through the CDN edge: requests that "
       "reach the origin",
       true, "", RunCdn},
      {"sharding", "consistent hashing against modulo",
       "users that move when a database cluster is added, per shard function; a live reshard "
       "2 -> 3 under load (its write pause)",
       true, "", RunSharding},
      {"queue", "jobs/s with workers added",
       "edit jobs drained per second by one, two and four workers on NATS JetStream", true, "",
       RunQueue},
      {"dc-failover", "a data centre lost: RTO and RPO",
       "a writer ledger across a planned `dc failover dc2`, `dc failback` and `chaos dc-down "
       "dc1` (the runner fails over by itself): RTO and acknowledged writes lost per phase",
       true, "", RunDcFailover},
  };
  return all;
}

const ScenarioInfo* FindScenario(const std::string& name) {
  for (const auto& s : Scenarios())
    if (s.name == name) return &s;
  return nullptr;
}

int ParseScenarioFlags(const std::vector<std::string>& args, ScenarioFlags* out) {
  std::string names = "list, all";
  std::vector<std::string> valid{"list", "all"};
  for (const auto& s : Scenarios()) {
    names += ", " + s.name + (s.built ? "" : " (not built yet)");
    valid.push_back(s.name);
  }
  CLI::App app{
      "One step of the scaling story, measured on this machine: each scenario starts what it\n"
      "needs (`millions single`, or `millions up` of a topology of its own on free loopback\n"
      "ports), runs the before and the after under a bounded load, stops everything (also on\n"
      "failure or Ctrl-C), prints a table and writes REPORT/NAME.svg. `all` runs every built\n"
      "scenario and writes REPORT/index.html with every table and plot. A scenario whose stage\n"
      "is not built yet says so and exits 2. Figures are this machine's, with the load\n"
      "generator on the same cores: read them as ratios. See docs/scenarios.md.\n"
      "Scenarios: " +
          names,
      "millions scenario"};
  app.add_option("name", out->name, "A scenario, all, or list")
      ->required()
      ->check(CLI::IsMember(valid));
  out->report_dir = "scenarios";
  app.add_option("--report", out->report_dir,
                 "Directory for the SVG plots and, with all, index.html (default ./scenarios)");
  app.add_flag("--short", out->short_form,
               "The short form: seconds-long loads with a few users (CI); the figures are rough");
  app.add_option("--work", out->work_dir,
                 "Directory for the runs (default: a fresh one under /tmp, removed after)");
  app.add_flag("--keep", out->keep, "Keep the work directory (its logs and data)");
  app.add_option("--skip", out->skip, "With all: scenarios to leave out (repeat or a,b)")
      ->delimiter(',');
  std::vector<const char*> argv{"millions scenario"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  for (const auto& s : out->skip)
    if (!FindScenario(s)) {
      fprintf(stderr, "millions scenario: --skip: no scenario %s\n", s.c_str());
      return 2;
    }
  return -1;
}

namespace {

std::string SelfBinary() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "millions";
}

void Print(const ScenarioResult& r, const std::string& svg) {
  printf("\n== %s: %s ==\n%s", r.name.c_str(), r.title.c_str(), FormatTable(r.table).c_str());
  for (const auto& [heading, t] : r.more_tables)
    printf("\n-- %s --\n%s", heading.c_str(), FormatTable(t).c_str());
  if (!r.summary.empty()) printf("%s\n", r.summary.c_str());
  for (const auto& n : r.notes) printf("note: %s\n", n.c_str());
  if (!svg.empty()) printf("plot: %s\n", svg.c_str());
  fflush(stdout);
}

}  // namespace

int RunScenarios(const ScenarioFlags& f) {
  if (f.name == "list") {
    for (const auto& s : Scenarios())
      printf("%-16s %-9s %s\n", s.name.c_str(), s.built ? "built" : "not built", s.what.c_str());
    return 0;
  }
  std::vector<const ScenarioInfo*> todo;
  if (f.name == "all") {
    for (const auto& s : Scenarios())
      if (std::find(f.skip.begin(), f.skip.end(), s.name) == f.skip.end()) todo.push_back(&s);
  } else {
    const ScenarioInfo* s = FindScenario(f.name);
    if (!s->built) {
      fprintf(stderr, "millions scenario %s: not built yet: %s\n", s->name.c_str(),
              s->not_built.c_str());
      return 2;
    }
    todo.push_back(s);
  }
  InstallScenarioSignals();
  std::string work = f.work_dir;
  if (work.empty()) {
    char tmpl[] = "/tmp/millions-scenario-XXXXXX";
    if (!mkdtemp(tmpl)) {
      perror("millions scenario: mkdtemp");
      return 1;
    }
    work = tmpl;
    // The engines run as another user when we are root: they must reach their directories.
    chmod(work.c_str(), 0755);
  }
  fs::create_directories(f.report_dir);
  std::vector<ScenarioResult> results;
  int rc = 0;
  for (const auto* s : todo) {
    ScenarioResult r;
    r.name = s->name;
    r.title = s->title;
    if (!s->built) {
      r.built = false;
      r.summary = "Not built yet: " + s->not_built + ".";
      printf("\n== %s: %s ==\nnot built yet: %s\n", s->name.c_str(), s->title.c_str(),
             s->not_built.c_str());
      results.push_back(r);
      continue;
    }
    fprintf(stderr, "scenario %s%s...\n", s->name.c_str(), f.short_form ? " (short)" : "");
    try {
      ScenarioEnv env(work + "/" + s->name, SelfBinary(), f.short_form);
      r = s->run(env);
      r.name = s->name;
      r.title = s->title;
    } catch (const std::exception& e) {
      // A step cut short by the signal (a child ended early) fails for that reason.
      if (ScenarioInterrupted()) {
        fprintf(stderr, "millions scenario %s: interrupted; everything it started is stopped\n",
                s->name.c_str());
        return 1;
      }
      fprintf(stderr, "millions scenario %s failed: %s\n(logs under %s)\n", s->name.c_str(),
              e.what(), (work + "/" + s->name).c_str());
      r.summary = std::string("Failed: ") + e.what();
      results.push_back(r);
      rc = 1;
      continue;
    }
    std::string svg;
    if (!r.plot.series.empty()) {
      svg = f.report_dir + "/" + r.name + ".svg";
      std::ofstream(svg) << RenderSvg(r.plot);
    }
    Print(r, svg);
    results.push_back(r);
  }
  if (f.name == "all") {
    std::string html = f.report_dir + "/index.html";
    std::ofstream(html) << RenderHtml(results, std::string("millions: the story, measured") +
                                                   (f.short_form ? " (short form)" : ""));
    printf("\nreport: %s\n", html.c_str());
  }
  if (rc == 0 && !f.keep && f.work_dir.empty()) {
    std::error_code ec;
    fs::remove_all(work, ec);
  }
  return rc;
}

}  // namespace millions::ctl
