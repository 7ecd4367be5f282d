// `millions scenario dc-failover`: a data centre lost (docs/datacentres.md). Two DCs as in
// tests/integration/dc_ledger.py, kept small for two cores: dc1 holds the primary cluster (pg1),
// dc2 a Patroni standby cluster of it (pg2), a web node in each, etcd alone in dc3, and
// [postgres] dc_failover_after_ms short. A writer ledger (sign-ups through each DC's web node,
// every acknowledged (201) handle recorded with when it was sent and answered) runs across
// (a) a planned `millions dc failover dc2`, (b) `millions dc failback`, (c) `chaos dc-down dc1`
// with the runner's own failover. Per phase: the RTO seen by the writers, the writes
// acknowledged, those missing from the new primary afterwards (read there with psql), and the
// failed requests. A planned phase that loses an acknowledged write fails the scenario.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "ctl/scenarios.h"

namespace millions::ctl {

namespace {

using Clock = std::chrono::steady_clock;

double Secs(Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The topology: every address a free loopback port, "@RUN@" the run directory.
std::string DcTopology(ScenarioEnv& env, int failover_after_ms) {
  auto q = [](const std::string& v) { return "\"" + v + "\""; };
  std::string t;
  t += "[auth]\nsignup_per_minute = 100000\n";
  t += "\n[deployment]\nname = \"dcf\"\n";
  for (const char* dc : {"dc1", "dc2", "dc3"}) t += "\n[[dc]]\nname = " + q(dc) + "\n";
  t += "\n[runner]\nrun_dir = \"@RUN@\"\nadmin = " + q(env.FreeAddr()) + "\n";
  t += "\n[[etcd.node]]\nname = \"etcd1\"\ndc = \"dc3\"\nlisten = " + q(env.FreeAddr()) +
       "\npeer_listen = " + q(env.FreeAddr()) + "\n";
  t += "\n[web]\nthreads = 1\nblocking_threads = 4\n";
  for (int i = 1; i <= 2; ++i)
    t += "\n[[web.node]]\nname = \"web" + std::to_string(i) + "\"\ndc = \"dc" + std::to_string(i) +
         "\"\nlisten = " + q(env.FreeAddr()) + "\n";
  t += "\n[postgres]\npool_size = 3\nprimary_dc = \"dc1\"\ndc_failover_after_ms = " +
       std::to_string(failover_after_ms) + "\nfailover_wait_ms = 20000\n";
  for (int i = 1; i <= 2; ++i)
    t += "\n[[postgres.node]]\nname = \"pg" + std::to_string(i) + "\"\ndc = \"dc" +
         std::to_string(i) + "\"\nlisten = " + q(env.FreeAddr()) + "\nrest = " + q(env.FreeAddr()) +
         "\n";
  return t;
}

// Writers signing up users through web nodes until Finish(); each acknowledged handle with the
// times it was sent and acknowledged. A request with no answer is ambiguous (it may exist).
class Ledger {
 public:
  struct Ack {
    double sent, acked;
    std::string handle;
  };

  Ledger(std::string tag, const std::vector<std::string>& bases) : tag_(std::move(tag)) {
    for (size_t w = 0; w < bases.size(); ++w)
      threads_.emplace_back([this, base = bases[w], w] { Write(base, w); });
  }
  ~Ledger() { Finish(); }

  Ledger& Finish() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    return *this;
  }

  const std::string& tag() const { return tag_; }
  // After Finish():
  const std::vector<Ack>& acked() const { return acked_; }
  int failed() const { return failed_; }
  int ambiguous() const { return ambiguous_; }

  // Seconds from t0 to the first acknowledgement of a write sent after it (-1: none).
  double GapAfter(double t0) const {
    std::lock_guard lock(mu_);
    double best = -1;
    for (const auto& a : acked_)
      if (a.sent > t0 && (best < 0 || a.acked - t0 < best)) best = a.acked - t0;
    return best;
  }
  // The longest time without an acknowledgement, from the last one before t0 on.
  double Stall(double t0) const {
    std::vector<double> times;
    for (const auto& a : acked_) times.push_back(a.acked);
    std::sort(times.begin(), times.end());
    double from = t0, longest = 0;
    for (double t : times)
      if (t <= t0) from = t;
    for (double t : times)
      if (t > t0) longest = std::max(longest, t - from), from = t;
    return longest;
  }

 private:
  void Write(const std::string& base, size_t w) {
    for (long i = 0; !stop_; ++i) {
      std::string handle = tag_ + "_w" + std::to_string(w + 1) + "_" + std::to_string(i);
      double sent = Secs(Clock::now());
      auto a =
          Api(base, "POST", "/api/users",
              "{\"handle\":\"" + handle + "\",\"password\":\"password123\"}", "application/json");
      {
        std::lock_guard lock(mu_);
        if (a.status == 201)
          acked_.push_back({sent, Secs(Clock::now()), handle});
        else if (a.status == 0)
          ++ambiguous_;
        else
          ++failed_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(a.status == 201 ? 20 : 70));
    }
  }

  std::string tag_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Ack> acked_;
  int failed_ = 0, ambiguous_ = 0;
  std::vector<std::thread> threads_;
};

// The rows of `sql` on member `member`'s PostgreSQL (as the superuser, through the run's
// passfile), one per line; throws when psql fails.
std::string Sql(ScenarioEnv& env, const std::string& member, const std::string& sql) {
  std::string addr = env.NodeAddress(member + "-pg");
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("no address for " + member + "-pg");
  std::string run = env.topology().substr(0, env.topology().rfind('/')) + "/run";
  std::string out = env.dir() + "/sql.out";
  std::string cmd = "PGPASSFILE='" + run + "/secrets/pgpass' PGCONNECT_TIMEOUT=3 " +
                    "/usr/lib/postgresql/15/bin/psql -Atw -h " + addr.substr(0, colon) + " -p " +
                    addr.substr(colon + 1) + " -U postgres -d millions -c \"" + sql + "\" >'" +
                    out + "' 2>>'" + env.dir() + "/sql.log'";
  for (int attempt = 0;; ++attempt) {
    if (std::system(cmd.c_str()) == 0) return ReadAll(out);
    if (attempt == 10) throw std::runtime_error("psql on " + member + " failed: " + sql);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// Acknowledged handles of the ledger that `member` does not have.
long Lost(ScenarioEnv& env, const Ledger& led, const std::string& member) {
  std::string rows = Sql(
      env, member, "SELECT handle FROM users WHERE handle LIKE '" + led.tag() + "!_%' ESCAPE '!'");
  std::set<std::string> have;
  std::istringstream in(rows);
  for (std::string line; std::getline(in, line);) have.insert(line);
  long lost = 0;
  for (const auto& a : led.acked())
    if (!have.count(a.handle)) ++lost;
  return lost;
}

// The runner's RTO from `millions dc failover|failback`'s output ("RTO 0.85 s, RPO ..."), or -1.
double RunnerRto(const std::string& log) {
  auto at = log.rfind("RTO ");
  return at == std::string::npos ? -1 : std::atof(log.c_str() + at + 4);
}

}  // namespace

ScenarioResult RunDcFailover(ScenarioEnv& env) {
  const int before_ms = env.Pick(5000, 2000), after_ms = env.Pick(10000, 3000);
  const int after_failover_ms = 3000;  // the runner's bound for a lost DC
  TopoSpec spec;
  spec.text = DcTopology(env, after_failover_ms);
  env.Up("dcs", spec);
  const std::string web1 = "http://" + env.NodeAddress("web1");
  const std::string web2 = "http://" + env.NodeAddress("web2");
  ScenarioResult r;
  r.table.columns = {"phase", "RTO s",          "runner RTO s", "writes acknowledged",
                     "lost",  "failed requests"};
  r.plot.title = "RTO per phase (seconds without an acknowledged write)";
  r.plot.y_label = "seconds";
  r.plot.series = {{"RTO (writers)", {}}, {"RTO (runner)", {}}};
  auto row = [&](const std::string& phase, double rto, double runner, const Ledger& led,
                 long lost) {
    r.table.rows.push_back({phase, rto < 0 ? "-" : Num(rto, 2), runner < 0 ? "-" : Num(runner, 2),
                            std::to_string(led.acked().size()), std::to_string(lost),
                            std::to_string(led.failed() + led.ambiguous())});
    r.plot.categories.push_back(phase);
    r.plot.series[0].values.push_back(std::max(rto, 0.0));
    r.plot.series[1].values.push_back(std::max(runner, 0.0));
  };
  auto sleep_ms = [&](int ms) {
    for (int i = 0; i < ms / 50; ++i) {
      env.Check();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  // A planned move of writes (`dc failover dc2` or `dc failback`): RTO, lost must be 0.
  auto planned = [&](const std::string& phase, const std::vector<std::string>& cmd,
                     const std::string& new_primary, const std::string& tag) {
    Ledger led(tag, {web1, web2});
    sleep_ms(before_ms);
    double t0 = Secs(Clock::now());
    env.Say(phase + " under the ledger");
    const std::string log = "dc-" + tag + ".log";
    int rc = env.Millions(cmd, 120, log);
    sleep_ms(after_ms);
    led.Finish();
    std::string out = ReadAll(env.dir() + "/" + log);
    if (rc != 0) throw std::runtime_error("millions " + cmd[0] + " " + cmd[1] + " failed:\n" + out);
    if (led.GapAfter(t0) < 0) throw std::runtime_error(phase + ": no write acknowledged after it");
    long lost = Lost(env, led, new_primary);
    double stall = led.Stall(t0), runner = RunnerRto(out);
    row(phase, stall, runner, led, lost);
    env.Say(phase + ": write stall " + Num(stall, 2) + " s, runner RTO " + Num(runner, 2) +
            " s, lost " + std::to_string(lost) + " of " + std::to_string(led.acked().size()));
    if (lost > 0)
      throw std::runtime_error(phase + ": " + std::to_string(lost) + " of " +
                               std::to_string(led.acked().size()) +
                               " acknowledged writes lost in a planned failover (must be 0)");
    return stall;
  };
  const std::string topo = env.topology();
  double rto_a = planned("planned: dc failover dc2", {"dc", "failover", "dc2", "--topology", topo},
                         "pg2", "pa");
  double rto_b =
      planned("planned: dc failback", {"dc", "failback", "--topology", topo}, "pg1", "pb");
  // Unplanned: dc1 lost, writes through dc2's web node; the runner promotes dc2 by itself.
  Ledger led("pc", {web2});
  sleep_ms(before_ms);
  double t_down = Secs(Clock::now());
  env.Say("chaos dc-down dc1 under the ledger (the runner fails over after " +
          std::to_string(after_failover_ms) + " ms)");
  env.Chaos({"dc-down", "dc1"});
  // Until a write sent after the loss is acknowledged through dc2 (at most 60 s), then more.
  for (int i = 0; i < 1200 && led.GapAfter(t_down) < 0; ++i) sleep_ms(50);
  sleep_ms(after_ms);
  led.Finish();
  double rto_c = led.GapAfter(t_down);
  if (rto_c < 0) throw std::runtime_error("dc-down dc1: no write acknowledged through dc2 in 60 s");
  std::string dc_status;
  if (env.Millions({"dc", "status", "--topology", topo}, 30, "dc-status.log") == 0)
    dc_status = ReadAll(env.dir() + "/dc-status.log");
  if (dc_status.find("primary dc: dc2") == std::string::npos)
    throw std::runtime_error("after dc-down dc1, dc2 does not take writes:\n" + dc_status);
  long lost_c = Lost(env, led, "pg2");
  // The runner's RTO of the unplanned failover: its log line "... in X s" is in `dc status`.
  double runner_c = -1;
  if (auto at = dc_status.find(" RTO "); at != std::string::npos)
    runner_c = std::atof(dc_status.c_str() + at + 5);
  row("unplanned: chaos dc-down dc1", rto_c, runner_c, led, lost_c);
  env.Say("unplanned: RTO " + Num(rto_c, 2) + " s, lost " + std::to_string(lost_c));
  env.Down();
  r.summary = "Writes move between data centres: a planned `dc failover dc2` stalled the writers " +
              Num(rto_a, 2) + " s and `dc failback` " + Num(rto_b, 2) +
              " s, with no acknowledged write lost (the fence and catch-up make RPO 0); with dc1 "
              "lost outright the runner promoted dc2 by itself and writes through dc2 came back " +
              Num(rto_c, 2) + " s after the loss, " + std::to_string(lost_c) +
              " acknowledged writes lost (replication across DCs is asynchronous).";
  r.notes = {
      "dc1: pg1 (the primary cluster), dc2: pg2 (a Patroni standby cluster of it), one web node "
      "each, etcd alone in dc3; writers sign users up through both web nodes (through web2 only "
      "once dc1 is down).",
      "RTO s: planned, the longest time without an acknowledged write from the last one before "
      "the command; unplanned, from dc-down to the first acknowledgement of a write sent after "
      "it. Runner RTO s: the runner's own figure (fence, or the DC's last answer, to the first "
      "write committed in the new primary DC). Lost: acknowledged sign-ups missing from the new "
      "primary. Failed requests: answered with an error, or not answered (may have committed).",
      "The unplanned bound ([postgres] dc_failover_after_ms) is " +
          std::to_string(after_failover_ms) +
          " ms here; docs/datacentres.md's default is 15000 ms."};
  return r;
}

}  // namespace millions::ctl
